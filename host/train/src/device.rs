//! `auto | cpu | cuda | cuda:N`.

use tch::Device;

/// Parses a device name; `auto` is resolved by [`resolve`].
pub fn parse(name: &str) -> Result<Option<Device>, String> {
    match name {
        "auto" => Ok(None),
        "cpu" => Ok(Some(Device::Cpu)),
        "cuda" => Ok(Some(Device::Cuda(0))),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(Some(Device::Cuda(n))),
            _ => Err(format!(
                "device `{other}`: expected auto, cpu, cuda or cuda:N"
            )),
        },
    }
}

/// The device to use: `auto` means CUDA when available. Asking for a CUDA device that is not
/// there is an error, not a silent fallback.
pub fn resolve(name: &str) -> Result<Device, String> {
    match parse(name)? {
        None => Ok(Device::cuda_if_available()),
        Some(Device::Cuda(n)) => {
            let count = tch::Cuda::device_count() as usize;
            if n < count {
                Ok(Device::Cuda(n))
            } else {
                Err(format!(
                    "device cuda:{n} requested, {count} CUDA device(s) available"
                ))
            }
        }
        Some(d) => Ok(d),
    }
}
