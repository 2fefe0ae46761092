//! Host-side bindings of `wit/plugins.wit`, one module per world. The shared `types` and
//! `log` interfaces are generated once (in `scheduler`) and reused by the other worlds.

pub mod scheduler {
    wasmtime::component::bindgen!({
        world: "scheduler",
        path: "../../wit",
        additional_derives: [PartialEq],
    });
}

pub mod cleaner {
    wasmtime::component::bindgen!({
        world: "cleaner",
        path: "../../wit",
        additional_derives: [PartialEq],
        with: {
            "infra:plugins/types@0.4.0": crate::bindings::scheduler::infra::plugins::types,
            "infra:plugins/log@0.4.0": crate::bindings::scheduler::infra::plugins::log,
        },
    });
}

pub mod aggregator {
    wasmtime::component::bindgen!({
        world: "aggregator",
        path: "../../wit",
        additional_derives: [PartialEq],
        with: {
            "infra:plugins/types@0.4.0": crate::bindings::scheduler::infra::plugins::types,
            "infra:plugins/log@0.4.0": crate::bindings::scheduler::infra::plugins::log,
        },
    });
}

pub use scheduler::infra::plugins::log;
