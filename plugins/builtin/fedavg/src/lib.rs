//! The built-in `fedavg` aggregator; the algorithm lives in `infra_policies::aggregator::FedAvg`.
infra_sdk::export_aggregator!(infra_policies::aggregator::FedAvg);
