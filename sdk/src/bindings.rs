//! wit-bindgen output, one module per world. The shared interfaces (`types`, `log`) are
//! generated once, in `scheduler`, and reused by the other two worlds.

pub mod scheduler {
    wit_bindgen::generate!({
        world: "scheduler",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_scheduler_world",
        default_bindings_module: "infra_sdk::scheduler",
    });
}

pub mod cleaner {
    wit_bindgen::generate!({
        world: "cleaner",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_cleaner_world",
        default_bindings_module: "infra_sdk::cleaner",
        with: {
            "infra:plugins/types@0.4.0": crate::scheduler::infra::plugins::types,
            "infra:plugins/log@0.4.0": crate::scheduler::infra::plugins::log,
        },
    });
}

pub mod aggregator {
    wit_bindgen::generate!({
        world: "aggregator",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_aggregator_world",
        default_bindings_module: "infra_sdk::aggregator",
        with: {
            "infra:plugins/types@0.4.0": crate::scheduler::infra::plugins::types,
            "infra:plugins/log@0.4.0": crate::scheduler::infra::plugins::log,
        },
    });
}
