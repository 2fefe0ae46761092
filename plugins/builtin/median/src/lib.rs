//! The built-in `median` aggregator; the algorithm lives in `infra_policies::aggregator::Median`.
infra_sdk::export_aggregator!(infra_policies::aggregator::Median);
