//! The client's command line: what each subcommand takes. The binary puts
//! these beside its own `serve`, `healthcheck` and `codesigning`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// Where the server is and who is asking. Every option can come from the
/// environment, so a CI pipeline needs only the three variables.
#[derive(Clone, Default, Args)]
pub struct ClientOptions {
    /// Base URL of the server, e.g. `https://ota.example.com` (defaults to
    /// the URL of the last `login`).
    #[arg(long, env = "EXPO_UPDATES_URL", global = true)]
    pub url: Option<String>,
    /// Project id (with an API key, defaults to the key's own project).
    #[arg(long, env = "EXPO_UPDATES_PROJECT", global = true)]
    pub project: Option<String>,
    /// A project API key; prefer the environment variable, which does not
    /// show in the process list.
    #[arg(
        long,
        env = "EXPO_UPDATES_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Print the result as JSON on stdout (progress and errors go to stderr).
    #[arg(long, global = true)]
    pub json: bool,
}

/// The client subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Log in and keep the session token in the config directory (mode 0600).
    Login {
        /// Username or email; asked for when not given.
        #[arg(long)]
        username: Option<String>,
    },
    /// Create an account and log in with it.
    Register {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
    /// Forget the stored session.
    Logout,
    /// Show who the stored session and the API key belong to.
    Whoami,
    /// List or create projects.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Manage a project's members.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Manage a project's API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Show channels or point one at a branch.
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// List, inspect, republish, roll back or delete updates.
    #[command(subcommand)]
    Updates(UpdatesCommand),
    /// Change an update's rollout.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Publish an export (runs `npx expo export` when --dir is not given).
    Publish(PublishArgs),
    /// Upload the bundle embedded in a build, so devices still running it
    /// get patches; turn serving those patches on or off.
    #[command(subcommand)]
    Embedded(EmbeddedCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum EmbeddedCommand {
    /// Upload one platform's bundle of the export the build embeds.
    Upload {
        /// The `npx expo export --platform <platform>` output of the build
        /// (the bundle must be byte for byte the one in the binary).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum)]
        platform: OnePlatform,
        /// The embedded update's id (the `id` of the build's app.manifest).
        #[arg(long, conflicts_with = "manifest")]
        update_id: Option<String>,
        /// The build's app.manifest, to read the embedded update's id from.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Overrides the runtime version read from expoConfig.json.
        #[arg(long)]
        runtime_version: Option<String>,
    },
    /// The project's uploaded embedded bundles.
    List,
    /// Forget an embedded bundle.
    Delete { update_id: String },
    /// Serve patches against embedded bundles (owners; Android clients
    /// before expo-updates 57.0.23 discard them and download the full file).
    Enable,
    /// Stop serving patches against embedded bundles.
    Disable,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ProjectsCommand {
    /// Projects you are a member of.
    List,
    /// Create a project; you become its owner.
    Create {
        name: String,
        /// URL-safe short name (lowercase letters, digits, dashes).
        #[arg(long)]
        slug: Option<String>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum MembersCommand {
    List,
    /// Add an existing user by username or email.
    Add {
        user: String,
        #[arg(long, value_enum, default_value_t = Role::Member)]
        role: Role,
    },
    /// Remove a member (username, email or user id).
    Remove {
        user: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    Owner,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    List,
    /// Create a key; its secret is shown once.
    Create {
        #[arg(long)]
        name: Option<String>,
    },
    Rename {
        key_id: String,
        name: String,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        key_id: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum ChannelsCommand {
    List,
    /// Set a channel's whole mapping: a branch, and optionally a second
    /// branch for a share of its devices (without one, any split ends).
    Set {
        name: String,
        #[arg(long)]
        branch: String,
        /// A second branch that gets --rollout-percentage of the devices.
        #[arg(long, requires = "rollout_percentage")]
        rollout_branch: Option<String>,
        #[arg(long, requires = "rollout_branch", value_parser = clap::value_parser!(i64).range(0..=100))]
        rollout_percentage: Option<i64>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum UpdatesCommand {
    /// Newest first.
    List {
        #[arg(long)]
        branch: Option<String>,
        #[arg(long)]
        runtime_version: Option<String>,
        #[arg(long, value_enum)]
        platform: Option<OnePlatform>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// From a previous page's `nextCursor`.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One update with its files.
    View { update_id: String },
    /// Publish an earlier update again as the newest (rolls back to it).
    Republish {
        update_id: String,
        #[arg(long)]
        branch: Option<String>,
        #[arg(long)]
        message: Option<String>,
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=100))]
        rollout: Option<i64>,
    },
    /// Tell devices on a runtime version to run the update embedded in the app.
    Rollback {
        #[arg(long)]
        runtime_version: String,
        #[arg(long, value_enum, default_value_t = PlatformChoice::All)]
        platform: PlatformChoice,
        #[arg(long)]
        branch: Option<String>,
        #[arg(long)]
        message: Option<String>,
    },
    /// Delete an update (owners only).
    Delete { update_id: String },
}

#[derive(Debug, Clone, Subcommand)]
pub enum RolloutCommand {
    /// Serve an update to this percentage of devices (0 halts, 100 completes).
    Set {
        update_id: String,
        #[arg(value_parser = clap::value_parser!(i64).range(0..=100))]
        percent: i64,
    },
}

#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// The output of `npx expo export` (with expoConfig.json from
    /// `npx expo config --type public --json`); without it the export is run
    /// in the current directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Overrides the runtime version read from expoConfig.json.
    #[arg(long)]
    pub runtime_version: Option<String>,
    #[arg(long)]
    pub branch: Option<String>,
    #[arg(long)]
    pub message: Option<String>,
    /// Serve to this percentage of devices at first.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=100))]
    pub rollout: Option<i64>,
    #[arg(long, value_enum, default_value_t = PlatformChoice::All)]
    pub platform: PlatformChoice,
    /// Wait until the server has computed the bundle patches from earlier
    /// updates (devices one update behind download those), and print them.
    #[arg(long)]
    pub wait_patches: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlatformChoice {
    Ios,
    Android,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnePlatform {
    Ios,
    Android,
}

impl OnePlatform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
        }
    }
}

impl PlatformChoice {
    /// The platform names this choice allows.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Self::Ios => &["ios"],
            Self::Android => &["android"],
            Self::All => &["ios", "android"],
        }
    }
}
