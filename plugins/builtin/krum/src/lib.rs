//! The built-in `krum` aggregator; the algorithm lives in `infra_policies::aggregator::Krum`.
infra_sdk::export_aggregator!(infra_policies::aggregator::Krum);
