//! The built-in `least-loaded` scheduler; the algorithm lives in `infra_policies::scheduler::LeastLoaded`.
infra_sdk::export_scheduler!(infra_policies::scheduler::LeastLoaded);
