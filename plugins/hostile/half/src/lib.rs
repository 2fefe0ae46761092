//! Exports the `scheduling` interface but not the world's `info` and `configure`
//! functions: loading it must fail with a missing-export error.

wit_bindgen::generate!({
    inline: r#"
        package test:half;
        world half {
            export infra:plugins/scheduling@0.4.0;
        }
    "#,
    path: "../../../wit",
    world: "test:half/half",
    generate_all,
});

use exports::infra::plugins::scheduling::{Assignment, Guest, Pending};

struct Half;

impl Guest for Half {
    fn schedule(_: Pending) -> Vec<Assignment> {
        Vec::new()
    }
}

export!(Half);
