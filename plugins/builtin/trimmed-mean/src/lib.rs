//! The built-in `trimmed-mean` aggregator; the algorithm lives in `infra_policies::aggregator::TrimmedMean`.
infra_sdk::export_aggregator!(infra_policies::aggregator::TrimmedMean);
