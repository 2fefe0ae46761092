//! The built-in `dedup` cleaner; the algorithm lives in `infra_policies::cleaner::Dedup`.
infra_sdk::export_cleaner!(infra_policies::cleaner::Dedup);
