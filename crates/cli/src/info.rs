//! `kiln info`.

use clap::Args;
use kiln_api_types::SystemInfo;

use crate::output::{bytes_size, Section};
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Format the output: `json`, or a Go-style template such as '{{.Driver}}'
    #[arg(short = 'f', long, value_name = "FORMAT")]
    format: Option<String>,
}

pub async fn run(global: &GlobalArgs, args: &InfoArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let info = client.info().await?;
    match &args.format {
        Some(template) => {
            print!("{}", crate::format::render(template, &serde_json::to_value(&info)?)?)
        }
        None => {
            print!("{}", text(&info));
            for warning in &info.warnings {
                eprintln!("{warning}");
            }
        }
    }
    Ok(())
}

fn text(info: &SystemInfo) -> String {
    let mut s = Section::default();
    s.heading("Client:")
        .line(1, "Version", env!("CARGO_PKG_VERSION"))
        .line(1, "Context", "default");
    s.heading("").heading("Server:");
    s.line(1, "Containers", info.containers)
        .line(2, "Running", info.containers_running)
        .line(2, "Paused", info.containers_paused)
        .line(2, "Stopped", info.containers_stopped)
        .line(1, "Images", info.images)
        .line(1, "Server Version", &info.server_version)
        .line(1, "Storage Driver", &info.driver);
    for [label, value] in &info.driver_status {
        s.line(2, label, value);
    }
    s.line(1, "Logging Driver", &info.logging_driver)
        .line(1, "Cgroup Driver", &info.cgroup_driver)
        .line(1, "Cgroup Version", &info.cgroup_version);
    let runtimes: Vec<&str> = info.runtimes.keys().map(String::as_str).collect();
    s.line(1, "Runtimes", runtimes.join(" ")).line(1, "Default Runtime", &info.default_runtime);
    s.line(1, "Swarm", &info.swarm.local_node_state);
    if !info.security_options.is_empty() {
        s.heading(" Security Options:");
        for option in &info.security_options {
            security_option(&mut s, option);
        }
    }
    s.line(1, "Kernel Version", &info.kernel_version)
        .line(1, "Operating System", &info.operating_system)
        .line(1, "OSType", &info.os_type)
        .line(1, "Architecture", &info.architecture)
        .line(1, "CPUs", info.ncpu)
        .line(1, "Total Memory", bytes_size(info.mem_total))
        .line(1, "Name", &info.name)
        .line(1, "ID", &info.id)
        .line(1, "Docker Root Dir", &info.docker_root_dir)
        .line(1, "Debug Mode", info.debug);
    if info.kiln_default_shm_size > 0 {
        // Kiln's ML default, so users know /dev/shm is not Docker's 64MB.
        let shm = format!(
            "{} (half of the memory limit, or of host memory; --shm-size wins)",
            bytes_size(u64::try_from(info.kiln_default_shm_size).unwrap_or(0))
        );
        s.line(1, "Default Shm Size", shm);
    }
    s.text().to_owned()
}

/// `name=seccomp,profile=builtin` → "  seccomp" / "   Profile: builtin".
fn security_option(s: &mut Section, option: &str) {
    let mut name = option;
    let mut details = Vec::new();
    for pair in option.split(',') {
        match pair.split_once('=') {
            Some(("name", value)) => name = value,
            Some((key, value)) => details.push((key, value)),
            None => {}
        }
    }
    s.heading(&format!("  {name}"));
    for (key, value) in details {
        let mut label = key.to_owned();
        if let Some(first) = label.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        s.line(3, &label, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_text_has_dockers_labels() {
        let info = SystemInfo {
            driver: "overlay2".into(),
            docker_root_dir: "/var/lib/kiln".into(),
            mem_total: 8_327_184_384,
            security_options: vec!["name=seccomp,profile=builtin".into()],
            ..SystemInfo::default()
        };
        let text = text(&info);
        assert!(text.contains("\n Storage Driver: overlay2\n"), "{text}");
        assert!(text.contains("\n Docker Root Dir: /var/lib/kiln\n"), "{text}");
        assert!(text.contains("\n Total Memory: 7.755GiB\n"), "{text}");
        assert!(text.contains("\n  seccomp\n   Profile: builtin\n"), "{text}");
        assert!(!text.contains("Default Shm Size"), "dockerd does not say: {text}");
    }

    #[test]
    fn info_says_what_dev_shm_containers_get() {
        let info = SystemInfo { kiln_default_shm_size: 8 << 30, ..SystemInfo::default() };
        let text = text(&info);
        assert!(text.contains("\n Default Shm Size: 8GiB (half of the memory limit"), "{text}");
    }
}
