//! The built-in `priority` scheduler; the algorithm lives in `infra_policies::scheduler::Priority`.
infra_sdk::export_scheduler!(infra_policies::scheduler::Priority);
