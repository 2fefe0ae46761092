//! The built-in `clip-outliers` cleaner; the algorithm lives in `infra_policies::cleaner::ClipOutliers`.
infra_sdk::export_cleaner!(infra_policies::cleaner::ClipOutliers);
