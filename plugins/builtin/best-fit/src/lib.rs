//! The built-in `best-fit` scheduler; the algorithm lives in `infra_policies::scheduler::BestFit`.
infra_sdk::export_scheduler!(infra_policies::scheduler::BestFit);
