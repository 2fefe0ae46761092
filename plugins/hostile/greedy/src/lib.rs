//! A scheduler that also imports an interface the host does not provide (`test:greedy/fetch`):
//! loading it must fail and name that import.

wit_bindgen::generate!({
    inline: r#"
        package test:greedy;
        interface fetch {
            get: func(url: string) -> string;
        }
        world greedy {
            import fetch;
            include infra:plugins/scheduler@0.4.0;
        }
    "#,
    path: "../../../wit",
    world: "test:greedy/greedy",
    generate_all,
});

use exports::infra::plugins::scheduling::{Assignment, Guest as Scheduling, Pending};

struct Greedy;

impl Guest for Greedy {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "greedy".into(),
            version: "0.1.0".into(),
            description: test::greedy::fetch::get("https://example.invalid"),
        }
    }
    fn configure(_: Config) -> Result<(), String> {
        Ok(())
    }
}

impl Scheduling for Greedy {
    fn schedule(_: Pending) -> Vec<Assignment> {
        Vec::new()
    }
}

export!(Greedy);
