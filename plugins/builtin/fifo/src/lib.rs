//! The built-in `fifo` scheduler; the algorithm lives in `infra_policies::scheduler::Fifo`.
infra_sdk::export_scheduler!(infra_policies::scheduler::Fifo);
