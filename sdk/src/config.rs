//! Typed access to a plugin's key/value configuration that refuses unknown keys.

use crate::Config;
use std::str::FromStr;

/// Reads values out of a [`Config`]; [`ConfigReader::finish`] fails on keys nobody read.
pub struct ConfigReader<'a> {
    config: &'a Config,
    used: Vec<bool>,
}

impl<'a> ConfigReader<'a> {
    /// Starts reading `config`.
    pub fn new(config: &'a Config) -> Self {
        Self {
            config,
            used: vec![false; config.len()],
        }
    }

    /// The value of `key` parsed as `T`, or `None` when absent.
    pub fn get<T: FromStr>(&mut self, key: &str) -> Result<Option<T>, String> {
        let Some(i) = self.config.iter().position(|(k, _)| k == key) else {
            return Ok(None);
        };
        self.used[i] = true;
        let raw = &self.config[i].1;
        raw.trim()
            .parse::<T>()
            .map(Some)
            .map_err(|_| format!("config key `{key}`: cannot parse `{raw}`"))
    }

    /// The value of `key`, or `default` when absent.
    pub fn get_or<T: FromStr>(&mut self, key: &str, default: T) -> Result<T, String> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// Fails with the list of keys that were never read.
    pub fn finish(self) -> Result<(), String> {
        let unknown: Vec<&str> = self
            .config
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|((k, _), _)| k.as_str())
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!("unknown config key(s): {}", unknown.join(", ")))
        }
    }
}
