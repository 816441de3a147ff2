//! Typed keepalived.conf errors and warnings. keepalived logs "Unknown keyword" and carries on;
//! rampart refuses the file instead, naming the file, line and column, the keyword, and why.
//!
//! Every message is a complete sentence that names its keyword: [`KeepalivedError`] prefixes it
//! with `FILE:LINE:COLUMN: `, and [`Warning`] with `FILE:LINE: warning: `.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in one of the files read: an index into the file table, then 1-based line and
/// column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub file: usize,
    pub line: usize,
    pub column: usize,
}

/// The files read so far, the main one first; positions name them by index.
#[derive(Debug, Default)]
pub(crate) struct Files {
    paths: Vec<PathBuf>,
}

impl Files {
    pub fn add(&mut self, path: PathBuf) -> usize {
        self.paths.push(path);
        self.paths.len() - 1
    }

    pub fn path(&self, index: usize) -> &Path {
        self.paths
            .get(index)
            .map_or(Path::new(""), PathBuf::as_path)
    }
}

/// A keepalived.conf that rampart refuses: keepalived would reject it, or it asks for something
/// rampart's VRRP speaker does not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct KeepalivedError {
    /// The file the problem is in: the one given to [`super::load`] or an included one.
    pub file: PathBuf,
    /// 1-based line; 0 only when the file could not be read at all.
    pub line: usize,
    /// 1-based column (in characters); 0 only when the file could not be read at all.
    pub column: usize,
    /// The keyword the error is about, when there is one.
    pub keyword: Option<String>,
    /// Boxed to keep `Result<_, KeepalivedError>` small.
    pub kind: Box<KeepalivedErrorKind>,
}

impl fmt::Display for KeepalivedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.kind)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.kind
            )
        }
    }
}

/// Something keepalived accepts that rampart reads differently or not at all, with what rampart
/// does instead. The file is still used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: usize,
    pub keyword: String,
    /// A complete sentence naming the keyword.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: warning: {}",
            self.file.display(),
            self.line,
            self.message
        )
    }
}

/// A warning before it is tied to a file path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub pos: Pos,
    pub keyword: String,
    pub message: String,
}

impl Note {
    pub fn new(pos: Pos, keyword: &str, message: String) -> Note {
        Note {
            pos,
            keyword: keyword.to_owned(),
            message,
        }
    }

    pub fn into_warning(self, files: &Files) -> Warning {
        Warning {
            file: files.path(self.pos.file).to_path_buf(),
            line: self.pos.line,
            keyword: self.keyword,
            message: self.message,
        }
    }
}

/// An error before it is tied to a file path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub pos: Pos,
    pub keyword: Option<String>,
    pub kind: Box<KeepalivedErrorKind>,
}

impl Fault {
    /// A fault that is not about one keyword (quoting, braces).
    pub fn at(pos: Pos, kind: KeepalivedErrorKind) -> Fault {
        Fault {
            pos,
            keyword: None,
            kind: Box::new(kind),
        }
    }

    /// A fault about the keyword `keyword`.
    pub fn keyword(pos: Pos, keyword: &str, kind: KeepalivedErrorKind) -> Fault {
        Fault {
            pos,
            keyword: Some(keyword.to_owned()),
            kind: Box::new(kind),
        }
    }

    pub fn into_error(self, files: &Files) -> KeepalivedError {
        KeepalivedError {
            file: files.path(self.pos.file).to_path_buf(),
            line: self.pos.line,
            column: self.pos.column,
            keyword: self.keyword,
            kind: self.kind,
        }
    }
}

/// What is wrong. Values are quoted with Rust string escapes, so stray spaces and control
/// characters are visible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeepalivedErrorKind {
    // ---- the file and its text ----
    #[error("cannot read the keepalived configuration: {reason}")]
    Unreadable { reason: String },
    #[error("invalid UTF-8 byte 0x{byte:02X}; the keepalived configuration must be UTF-8 text")]
    InvalidUtf8 { byte: u8 },
    #[error("this '\"' opens a quoted string that does not end on this line; add the closing '\"'")]
    UnterminatedQuote,
    #[error(
        "a '\"' inside the word {word:?}: keepalived splits the word there; put whitespace \
         before the quoted string, or quote the whole value"
    )]
    QuoteInsideWord { word: String },
    #[error(
        "text right after the closing '\"' of {quoted:?}: keepalived splits it off as another \
         word; put whitespace after the quoted string, or quote the whole value"
    )]
    TextAfterQuote { quoted: String },

    // ---- include ----
    #[error("keyword \"include\" needs exactly one file name, found {count}")]
    IncludeArguments { count: usize },
    #[error(
        "keyword \"include\" names {pattern:?}, a wildcard pattern: rampart reads only plain file \
         names; write one \"include\" line per file"
    )]
    IncludeWildcard { pattern: String },
    #[error("keyword \"include\" names {path:?}, which cannot be read: {reason}")]
    IncludeUnreadable { path: PathBuf, reason: String },
    #[error(
        "keyword \"include\" is nested more than {limit} files deep; does {path:?} include \
         itself?"
    )]
    IncludeTooDeep { path: PathBuf, limit: usize },
    #[error(
        "keyword \"include\" needs the file system; this text was given without a file (use load)"
    )]
    IncludeWithoutFiles,

    // ---- braces ----
    #[error(
        "the block of {keyword:?} opened here (line {line}) is never closed: the file ends \
         first; add the missing '}}'{hint}"
    )]
    UnclosedBlock {
        keyword: String,
        line: usize,
        hint: String,
    },
    #[error("this '}}' closes no block; remove it, or look for a missing '{{' above")]
    StrayClose,
    #[error("this '{{' has no keyword before it; write \"KEYWORD {{\"")]
    StrayOpen,
    #[error("blocks are nested more than {limit} deep; look for missing '}}'")]
    TooDeep { limit: usize },

    // ---- keywords ----
    #[error("keyword {keyword:?} is not one rampart reads in {context}; expected {expected}")]
    Unknown {
        keyword: String,
        context: &'static str,
        expected: &'static str,
    },
    #[error("keyword {keyword:?} in {context} is not supported by rampart: {reason}")]
    Unsupported {
        keyword: String,
        context: &'static str,
        reason: &'static str,
    },
    #[error("keyword {keyword:?} needs a value: expected {expected}")]
    MissingValue {
        keyword: String,
        expected: &'static str,
    },
    #[error("keyword {keyword:?} has the extra value {value:?}; expected {expected}")]
    ExtraValue {
        keyword: String,
        value: String,
        expected: &'static str,
    },
    #[error("keyword {keyword:?} needs a block: expected \"{keyword} {{ ... }}\"")]
    ExpectedBlock { keyword: String },
    #[error("keyword {keyword:?} does not take a {{ ... }} block")]
    UnexpectedBlock { keyword: String },
    #[error("keyword {keyword:?} is set twice in {context} (first on line {first_line})")]
    Duplicate {
        keyword: String,
        context: &'static str,
        first_line: usize,
    },

    // ---- values ----
    #[error(
        "keyword {keyword:?} has the value {value:?}, which is not a number; expected {expected}"
    )]
    NotANumber {
        keyword: String,
        value: String,
        expected: &'static str,
    },
    #[error(
        "keyword {keyword:?} has the value {value:?}, which is out of range; expected {expected}"
    )]
    OutOfRange {
        keyword: String,
        value: String,
        expected: &'static str,
    },
    #[error(
        "keyword \"state\" has the value {value:?}; expected MASTER or BACKUP (in capitals; \
         keepalived reads anything else as BACKUP and reports an error)"
    )]
    InvalidState { value: String },
    #[error(
        "keyword \"interface\" has the value {value:?}, which is not a Linux interface name (1 \
         to 15 bytes, without '/', ':' or whitespace)"
    )]
    InvalidInterface { value: String },
    #[error(
        "keyword \"advert_int\" has the value {value:?}, which VRRP version 2 cannot carry: \
         expected whole seconds from 1 to 255 (keepalived would round it and report an error); \
         sub-second intervals need \"version 3\""
    )]
    AdvertIntV2 { value: String },
    #[error(
        "keyword \"advert_int\" has the value {value:?}, which VRRP version 3 cannot carry: \
         expected 0.01 to 40.95 seconds in steps of 0.01 (keepalived would round or cap it and \
         report an error)"
    )]
    AdvertIntV3 { value: String },
    #[error("keyword {keyword:?} has the value {value:?}, which is not an IP address")]
    InvalidAddress { keyword: String, value: String },
    #[error(
        "keyword {keyword:?} has the address {value:?} with an invalid prefix length; expected \
         ADDRESS/0 to /{max}"
    )]
    InvalidPrefix {
        keyword: String,
        value: String,
        max: u8,
    },
    #[error("keyword {keyword:?} lists {value:?} twice (first on line {first_line})")]
    DuplicateAddress {
        keyword: String,
        value: String,
        first_line: usize,
    },
    #[error("keyword {keyword:?} has an empty block; expected at least one address")]
    EmptyList { keyword: String },
    #[error(
        "keyword {keyword:?} has more than {limit} addresses, more than one advertisement can \
         carry (keepalived moves the rest out of the advertisement and reports an error)"
    )]
    TooManyAddresses { keyword: String, limit: usize },
    #[error(
        "virtual address {value:?} has the option {option:?}, which rampart does not support; \
         expected ADDRESS[/PREFIX] [dev IFNAME] [label LABEL]"
    )]
    VipOption { value: String, option: String },
    #[error(
        "virtual address {value:?} is on \"dev {dev}\": rampart puts every virtual address on \
         the instance's interface {interface:?}"
    )]
    VipDevice {
        value: String,
        dev: String,
        interface: String,
    },
    #[error(
        "{keyword:?} address {value:?} is {family}, but this instance's first virtual address \
         {first:?} (line {first_line}) is not: keepalived requires one address family per \
         instance"
    )]
    MixedFamilies {
        keyword: String,
        value: String,
        family: &'static str,
        first: String,
        first_line: usize,
    },
    #[error(
        "virtual address {value:?} is IPv6, which VRRP version 2 cannot carry; add \
         \"version 3\" to the instance (or \"vrrp_version 3\" to global_defs)"
    )]
    Ipv6NeedsV3 { value: String },

    // ---- authentication ----
    #[error(
        "keyword \"auth_type\" has the value \"AH\": IPsec AH authentication is obsolete and \
         rampart does not support it; use \"auth_type PASS\" on every node, or no \
         authentication"
    )]
    AuthAh,
    #[error("keyword \"auth_type\" has the value {value:?}; expected PASS")]
    AuthType { value: String },
    #[error(
        "the authentication block has \"auth_type PASS\" but no \"auth_pass\"; keepalived \
         would then send no authentication: add \"auth_pass SECRET\" or remove the block"
    )]
    AuthNoPassword,
    #[error(
        "the authentication block has \"auth_pass\" but no \"auth_type PASS\"; keepalived then \
         sends no password at all: add \"auth_type PASS\" or remove the block"
    )]
    AuthNoType,
    #[error("keyword \"auth_pass\" has an empty password")]
    EmptyPassword,

    // ---- instances ----
    #[error("keyword \"vrrp_instance\" needs a name: expected \"vrrp_instance NAME {{\"")]
    InstanceName,
    #[error("vrrp_instance {name:?} has no {keyword:?}; expected {expected}")]
    Missing {
        name: String,
        keyword: &'static str,
        expected: &'static str,
    },
    #[error(
        "vrrp_instance {name:?} has \"preempt_delay\" and \"{other}\"; keepalived ignores the \
         delay then and reports an error: remove \"preempt_delay\""
    )]
    PreemptDelayIgnored { name: String, other: &'static str },
    #[error(
        "vrrp_instance {name:?} has both \"nopreempt\" and \"preempt\"; keep only the one you \
         mean"
    )]
    PreemptConflict { name: String },
    #[error(
        "vrrp_instance {name:?} is defined twice (first on line {first_line}); instance names \
         must be unique"
    )]
    DuplicateInstance { name: String, first_line: usize },
    #[error(
        "vrrp_instance {name:?} uses virtual_router_id {vrid} with {family} on interface \
         {interface:?}, like vrrp_instance {other:?} (line {other_line}); keepalived rejects \
         this: give each instance on an interface its own virtual_router_id"
    )]
    DuplicateVrid {
        name: String,
        vrid: u8,
        family: &'static str,
        interface: String,
        other: String,
        other_line: usize,
    },
    #[error("the file has no vrrp_instance block; rampart's VRRP speaker needs at least one")]
    NoInstances,
}
