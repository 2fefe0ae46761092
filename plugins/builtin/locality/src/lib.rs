//! The built-in `locality` scheduler; the algorithm lives in `infra_policies::scheduler::Locality`.
infra_sdk::export_scheduler!(infra_policies::scheduler::Locality);
