//! A scheduler that answers exactly the assignments named by its `answer` config
//! (`task:node` positions, comma-separated), whatever tasks and nodes it is given, so the
//! host's check of a scheduler's answer can be tested against out-of-range positions, a
//! task placed twice and an overbooked node.

use infra_sdk::{Assignment, Config, ConfigReader, Pending, Plugin, PluginInfo, Scheduler};

#[derive(Default)]
struct RogueScheduler {
    answer: Vec<Assignment>,
}

impl Plugin for RogueScheduler {
    fn info() -> PluginInfo {
        infra_sdk::info("rogue-scheduler", "0.1.0", "answers what its config says")
    }

    fn configure(&mut self, config: &Config) -> Result<(), String> {
        let mut c = ConfigReader::new(config);
        let answer: String = c.get_or("answer", String::new())?;
        c.finish()?;
        self.answer = answer
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (t, n) = p.split_once(':').ok_or(format!("`{p}` is not task:node"))?;
                let num = |s: &str| s.parse::<u32>().map_err(|e| format!("`{s}`: {e}"));
                Ok(Assignment {
                    task: num(t)?,
                    node: num(n)?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(())
    }
}

impl Scheduler for RogueScheduler {
    fn schedule(&mut self, _pending: Pending) -> Vec<Assignment> {
        self.answer.clone()
    }
}

infra_sdk::export_scheduler!(RogueScheduler);
