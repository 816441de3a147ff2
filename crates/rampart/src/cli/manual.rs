//! The manual's prose: the description and the EXAMPLES, SIGNALS, ENVIRONMENT, FILES and EXIT
//! STATUS sections that `rampart --help` prints after the flags. The man page
//! (packaging/rampart.8, with rampart-route.8 and rampart-check.8 for the subcommands) is
//! rendered from the same text and the flags by a test in this module, which fails when a file
//! in the tree differs from what the flags say.

/// The long description, shown by `--help` and as the man page's DESCRIPTION.
pub const DESCRIPTION: &str = "A sharding Redis proxy: a drop-in nutcracker (twemproxy) \
replacement.

rampart reads an unchanged nutcracker.yml, takes nutcracker 0.5.0's flags with the same \
defaults, serves the same stats JSON and places every key on the same server nutcracker would. \
It can also follow Redis Sentinel failovers (the `sentinels:` pool directive) and carry the \
proxy tier's virtual IP itself with VRRP, wire-compatible with keepalived (`--vrrp`).

Without a subcommand rampart runs the proxy (or, with -t, -V or -D, tests the configuration or \
prints information and exits). `rampart route` prints where keys are placed, and `rampart \
check` is a health check for keepalived's track_script; `rampart help SUBCOMMAND` describes \
their flags.";

/// A titled list of terms and their explanations.
pub struct Section {
    pub title: &'static str,
    pub entries: &'static [(&'static str, &'static str)],
}

/// The sections after the flags, in man-page order.
pub const SECTIONS: &[Section] = &[
    Section {
        title: "EXAMPLES",
        entries: &[
            (
                "rampart -c /etc/rampart/nutcracker.yml -o /var/log/rampart/rampart.log -p /run/rampart/rampart.pid",
                "Serve the pools of a nutcracker.yml, logging to a file that logrotate may \
                 rename (then send SIGHUP).",
            ),
            (
                "rampart -t -c /etc/rampart/nutcracker.yml --vrrp /etc/rampart/keepalived.conf",
                "Check both configuration files without starting anything.",
            ),
            (
                "rampart -c /etc/rampart/nutcracker.yml --vrrp /etc/rampart/keepalived.conf --log-format json",
                "Serve the pools and the virtual IPs of the keepalived.conf's vrrp_instance \
                 blocks (needs CAP_NET_RAW and CAP_NET_ADMIN), logging JSON lines to stderr.",
            ),
            (
                "rampart route -c /etc/rampart/nutcracker.yml user:1 user:2",
                "Print the server each key is placed on.",
            ),
            (
                "rampart check -c /etc/rampart/nutcracker.yml --timeout 1000",
                "Exit 0 when a PING and a request to every shard go through the running proxy \
                 within a second: a track_script for keepalived.",
            ),
        ],
    },
    Section {
        title: "SIGNALS",
        entries: &[
            (
                "SIGTERM, SIGINT",
                "Stop: a VRRP master hands its virtual IP over (priority 0), the listeners \
                 close, replies in flight reach their clients, the pid file is removed, and \
                 rampart exits 0.",
            ),
            (
                "SIGHUP",
                "Reopen the -o log file, so logrotate can rename it and then signal. It does \
                 not reload the configuration.",
            ),
            ("SIGTTIN", "Raise the log level by one (at most 11)."),
            ("SIGTTOU", "Lower the log level by one (at least 0)."),
            (
                "SIGUSR1",
                "Read the configuration file again (as `rampart reload` does): pools and \
                 servers added, removed or changed take effect without closing the clients \
                 of the pools that stay. A file with an error is refused with its file:line \
                 reason in the log, and the running configuration is kept. nutcracker \
                 ignores SIGUSR1.",
            ),
            (
                "SIGUSR2, SIGALRM",
                "Logged and otherwise ignored (nutcracker ignores SIGUSR2 too).",
            ),
            ("SIGPIPE", "Ignored, as nutcracker does."),
        ],
    },
    Section {
        title: "ENVIRONMENT",
        entries: &[(
            "NOTIFY_SOCKET",
            "Set by systemd for Type=notify services: rampart sends READY=1 once its \
             listeners are bound and its workers started, and STOPPING=1 when it begins to \
             stop.",
        )],
    },
    Section {
        title: "FILES",
        entries: &[
            (
                "conf/nutcracker.yml",
                "The default configuration file, relative to the working directory (as \
                 nutcracker's).",
            ),
            (
                "/etc/rampart/nutcracker.yml, /etc/rampart/keepalived.conf",
                "Where packaging/install puts the configuration the systemd unit runs with.",
            ),
            (
                "/var/log/rampart/rampart.log",
                "The log file of the systemd unit.",
            ),
        ],
    },
    Section {
        title: "EXIT STATUS",
        entries: &[
            (
                "0",
                "-h, -V, -D, a configuration that passed -t, a stop on SIGTERM or SIGINT, a \
                 passed `rampart check`.",
            ),
            (
                "1",
                "Invalid flags or configuration, a start-up failure (a port in use, no \
                 permission for the pid or log file, VRRP without the capabilities), a worker \
                 that ended abnormally, a failed `rampart check`.",
            ),
        ],
    },
];

/// The text `--help` prints after the flags: every section, each entry's term on its own
/// line with its explanation indented below.
pub fn after_long_help() -> String {
    let mut text = String::new();
    for section in SECTIONS {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(section.title);
        text.push_str(":\n");
        for (term, explanation) in section.entries {
            text.push_str("  ");
            text.push_str(term);
            text.push_str("\n          ");
            text.push_str(explanation);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::CommandFactory;
    use clap_mangen::Man;
    use clap_mangen::roff::{Roff, bold, roman};

    use super::*;
    use crate::cli::args::Cli;

    fn man(command: clap::Command) -> Man {
        Man::new(command)
            .section("8")
            .manual("System Administration")
            .source(format!("rampart {}", env!("CARGO_PKG_VERSION")))
    }

    /// The man pages the flags and [`SECTIONS`] make: rampart.8, then one per subcommand
    /// (rampart-route.8, rampart-check.8), by file name.
    fn render() -> Vec<(String, String)> {
        let command = Cli::command();
        let main = man(command.clone());
        let mut page = Vec::new();
        main.render_title(&mut page).unwrap();
        main.render_name_section(&mut page).unwrap();
        main.render_synopsis_section(&mut page).unwrap();
        main.render_description_section(&mut page).unwrap();
        main.render_options_section(&mut page).unwrap();
        let subcommands: Vec<&clap::Command> = command
            .get_subcommands()
            .filter(|subcommand| subcommand.get_name() != "help")
            .collect();
        let mut roff = Roff::new();
        roff.control("SH", ["SUBCOMMANDS"]);
        for subcommand in &subcommands {
            let name = subcommand.get_name();
            roff.control("TP", []);
            roff.text([bold(format!("rampart {name}"))]);
            let about = subcommand.get_about().map(ToString::to_string);
            roff.text([roman(format!(
                "{} See rampart-{name}(8).",
                about.unwrap_or_default()
            ))]);
        }
        for section in SECTIONS {
            roff.control("SH", [section.title]);
            for (term, explanation) in section.entries {
                roff.control("TP", []);
                roff.text([bold(*term)]);
                roff.text([roman(*explanation)]);
            }
        }
        roff.control("SH", ["SEE ALSO"]);
        roff.text([roman(
            "nutcracker(8), keepalived.conf(5), redis-sentinel(1), systemd.service(5); \
             docs/migrating.md, docs/vrrp.md, docs/failover.md and docs/compatibility.md in \
             rampart's source tree.",
        )]);
        roff.to_writer(&mut page).unwrap();
        let mut pages = vec![("rampart.8".to_owned(), String::from_utf8(page).unwrap())];
        for subcommand in subcommands {
            let name = format!("rampart-{}", subcommand.get_name());
            let mut page = Vec::new();
            man(subcommand.clone().name(name.clone().leak() as &str))
                .render(&mut page)
                .unwrap();
            pages.push((format!("{name}.8"), String::from_utf8(page).unwrap()));
        }
        pages
    }

    /// packaging/*.8 are exactly what the flags render to. After changing a flag, run
    /// `RAMPART_WRITE_MAN=1 cargo test -p rampart man_page` to rewrite them.
    #[test]
    fn man_page_matches_the_flags() {
        let packaging = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../packaging");
        for (file, rendered) in render() {
            let path = packaging.join(file);
            if std::env::var_os("RAMPART_WRITE_MAN").is_some() {
                std::fs::write(&path, &rendered).unwrap();
            }
            let stored = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                stored == rendered,
                "{} is out of date: run `RAMPART_WRITE_MAN=1 cargo test -p rampart man_page`",
                path.display()
            );
        }
    }

    #[test]
    fn help_text_lists_every_section() {
        let text = after_long_help();
        for section in SECTIONS {
            assert!(text.contains(&format!("{}:\n", section.title)));
        }
        assert!(text.contains("SIGHUP\n          Reopen the -o log file"));
    }
}
