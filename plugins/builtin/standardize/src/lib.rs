//! The built-in `standardize` cleaner; the algorithm lives in `infra_policies::cleaner::Standardize`.
infra_sdk::export_cleaner!(infra_policies::cleaner::Standardize);
