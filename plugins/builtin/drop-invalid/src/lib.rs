//! The built-in `drop-invalid` cleaner; the algorithm lives in `infra_policies::cleaner::DropInvalid`.
infra_sdk::export_cleaner!(infra_policies::cleaner::DropInvalid);
