//! Exports `infra:plugins/scheduling@0.1.0`, the interface of an earlier contract version
//! (a plugin built before 0.2.0): loading it must fail with an error that names the version
//! it was built against and the one the host speaks. Only the export's name matters here,
//! so the interface is a stand-in.

wit_bindgen::generate!({
    inline: r#"
        package infra:plugins@0.1.0;
        interface scheduling {
            schedule: func() -> u32;
        }
        world old-contract {
            export scheduling;
        }
    "#,
    world: "infra:plugins/old-contract@0.1.0",
});

struct OldContract;

impl exports::infra::plugins::scheduling::Guest for OldContract {
    fn schedule() -> u32 {
        0
    }
}

export!(OldContract);
