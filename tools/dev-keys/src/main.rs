//! The local signing key set of `./dev run` and `./dev test`, and its rotation (`./dev rotate`).
//!
//! The file has the shape of the deployed key set's secret (`shared::key_set::StoredKeySet`:
//! `{"keys": [{"kid", "state", "private_key"}]}`) plus `signing_since`, when the current key began
//! to sign. Each step moves it with the key-set function's own state machine
//! (`keyset::rotation::apply`), so the rotation tested locally is the one AWS runs:
//!
//! - `publish`: a next key beside the current one; verifiers get it, nothing signs with it yet;
//! - `sign`: the next key signs; the old one stays published as the previous key;
//! - `retire`: the previous key goes, once every token it signed has expired (the access-token
//!   lifetime, the authorizer cache and the leeway after `sign`; `--force` skips the check).
//!
//! A step that the state machine leaves the set unchanged for is refused, naming the next step.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use keyset::rotation::{Rotation, apply, published};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use shared::keystore::{KeyState, StoredKeySet};
use shared::{SigningKey, TokenSettings};

#[derive(Parser)]
#[command(about = "The local signing key set of ./dev run and ./dev test, and its rotation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generates a set of one key in FILE unless FILE exists.
    Init { file: PathBuf },
    /// Prints each key's state and kid.
    Status { file: PathBuf },
    /// Publishes a next key.
    Publish { file: PathBuf },
    /// Signs with the next key; the current one becomes the previous.
    Sign { file: PathBuf },
    /// Drops the previous key (refused while tokens it signed may be valid, unless --force).
    Retire {
        file: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// The functions' `JWT_SIGNING_KEY` and `JWT_PUBLIC_KEYS`, as lines of an env file.
    Env { file: PathBuf },
    /// The PEM of the key in STATE (default current), for tests that sign as its holder would.
    Pem {
        file: PathBuf,
        #[arg(default_value = "current")]
        state: String,
    },
    /// The kid of the key in STATE (default current).
    Kid {
        file: PathBuf,
        #[arg(default_value = "current")]
        state: String,
    },
    /// The kid (RFC 7638 thumbprint) of the PKCS#8 PEM key on standard input, for fixtures
    /// signed with a fixed test key.
    KidOfPem,
}

/// The file: the deployed secret's shape, and when the current key began to sign.
#[derive(Serialize, Deserialize)]
struct DevKeySet {
    #[serde(flatten)]
    set: StoredKeySet,
    signing_since: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn load(file: &Path) -> anyhow::Result<DevKeySet> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a dev key set", file.display()))
}

/// Writes `keys` to `file` readable by its owner only, replacing it at once.
fn save(file: &Path, keys: &DevKeySet) -> anyhow::Result<()> {
    let temporary = file.with_extension("tmp");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("writing {}", temporary.display()))?;
    out.write_all(serde_json::to_string_pretty(keys)?.as_bytes())?;
    std::fs::rename(&temporary, file).with_context(|| format!("replacing {}", file.display()))
}

fn describe(set: &StoredKeySet) -> String {
    let keys: Vec<String> = set
        .keys
        .iter()
        .map(|k| format!("{} {}", state_name(k.state), k.kid))
        .collect();
    keys.join(", ")
}

/// The state as the key set's file spells it (the secret's format, `shared::keystore`).
fn state_name(state: KeyState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|name| name.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn in_state<'a>(set: &'a StoredKeySet, state: &str) -> anyhow::Result<&'a shared::keystore::StoredKey> {
    set.keys
        .iter()
        .find(|k| state_name(k.state) == state)
        .with_context(|| format!("no {state} key ({})", describe(set)))
}

/// How long tokens signed before the last `sign` may still be accepted: the access-token
/// lifetime and leeway (the functions' settings, from the environment as they read it) and the
/// authorizer cache (the template's `AuthorizerCacheSeconds`).
fn retire_wait() -> anyhow::Result<u64> {
    let settings = TokenSettings::from_env()?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path)?)?;
    let cache = template["Parameters"]["AuthorizerCacheSeconds"]["Default"]
        .as_u64()
        .context("template.yaml: AuthorizerCacheSeconds has no numeric Default")?;
    Ok(settings.access_ttl.as_secs() + cache + settings.leeway.as_secs())
}

/// One step of the rotation, by the key-set function's state machine.
fn step(file: &Path, to: Rotation, force: bool) -> anyhow::Result<()> {
    let mut keys = load(file)?;
    if to == Rotation::RetirePrevious && keys.set.in_state(KeyState::Previous).is_some() && !force {
        let left = (keys.signing_since + retire_wait()?).saturating_sub(now());
        if left > 0 {
            bail!(
                "tokens signed by the previous key may be valid for {left} s more (access-token lifetime + authorizer cache + leeway after `sign`); retire then, or pass --force"
            );
        }
    }
    let outcome = apply(&keys.set, to, &mut SigningKey::generate)?;
    if !outcome.changed {
        let next = match (
            to,
            keys.set.in_state(KeyState::Next),
            keys.set.in_state(KeyState::Previous),
        ) {
            (_, Some(_), _) => "`sign` is the next step",
            (_, _, Some(_)) => "`retire` is the next step",
            _ => "`publish` is the next step",
        };
        bail!(
            "`{}` changes nothing now ({}): {next}",
            verb(to),
            describe(&keys.set)
        );
    }
    if to == Rotation::SignWithNext {
        keys.signing_since = now();
    }
    keys.set = outcome.set;
    save(file, &keys)?;
    eprintln!("{}: {}", verb(to), describe(&keys.set));
    Ok(())
}

fn verb(to: Rotation) -> &'static str {
    match to {
        Rotation::PublishNext => "publish",
        Rotation::SignWithNext => "sign",
        Rotation::RetirePrevious => "retire",
        Rotation::None => "init",
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init { file } => {
            if !file.exists() {
                let first = apply(
                    &StoredKeySet::default(),
                    Rotation::None,
                    &mut SigningKey::generate,
                )?;
                save(
                    &file,
                    &DevKeySet {
                        set: first.set,
                        signing_since: now(),
                    },
                )?;
                eprintln!("generated a dev-only signing key in {}", file.display());
            }
        }
        Command::Status { file } => println!("{}", describe(&load(&file)?.set)),
        Command::Publish { file } => step(&file, Rotation::PublishNext, false)?,
        Command::Sign { file } => step(&file, Rotation::SignWithNext, false)?,
        Command::Retire { file, force } => step(&file, Rotation::RetirePrevious, force)?,
        Command::Env { file } => {
            let set = load(&file)?.set;
            let current = in_state(&set, "current")?;
            // Double quotes with \n escapes: the PEM on one line of a dotenv file.
            let pem = current.private_key.expose_secret().trim().replace('\n', "\\n");
            println!("JWT_SIGNING_KEY=\"{pem}\"");
            println!("JWT_PUBLIC_KEYS='{}'", published(&set)?.jwks);
        }
        Command::Pem { file, state } => print!(
            "{}",
            in_state(&load(&file)?.set, &state)?.private_key.expose_secret()
        ),
        Command::Kid { file, state } => println!("{}", in_state(&load(&file)?.set, &state)?.kid),
        Command::KidOfPem => {
            let pem = std::io::read_to_string(std::io::stdin())?;
            println!("{}", SigningKey::from_pem(&pem)?.kid());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key set file of its own in the temporary folder, removed at the end.
    struct File(PathBuf);

    impl File {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("dev-keys-{}-{name}.json", std::process::id()));
            let _ = std::fs::remove_file(&path);
            run(Command::Init { file: path.clone() }).unwrap();
            Self(path)
        }

        fn states(&self) -> Vec<(String, String)> {
            load(&self.0)
                .unwrap()
                .set
                .keys
                .iter()
                .map(|k| (k.kid.clone(), state_name(k.state)))
                .collect()
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn publish_sign_and_retire_move_the_published_key_to_signing_and_drop_the_old_one() {
        let file = File::new("cycle");
        let states = file.states();
        assert_eq!(states.len(), 1);
        let (first, state) = states[0].clone();
        assert_eq!(state, "current");
        step(&file.0, Rotation::PublishNext, false).unwrap();
        let next = file.states()[1].clone();
        assert_eq!(next.1, "next");
        step(&file.0, Rotation::SignWithNext, false).unwrap();
        assert_eq!(
            file.states(),
            [(next.0.clone(), "current".into()), (first, "previous".into())]
        );
        step(&file.0, Rotation::RetirePrevious, true).unwrap();
        assert_eq!(file.states(), [(next.0, "current".into())]);
    }

    #[test]
    fn retire_is_refused_while_tokens_of_the_previous_key_may_be_valid() {
        let file = File::new("early");
        step(&file.0, Rotation::PublishNext, false).unwrap();
        step(&file.0, Rotation::SignWithNext, false).unwrap();
        let before = file.states();
        let refused = step(&file.0, Rotation::RetirePrevious, false).unwrap_err();
        assert!(refused.to_string().contains("may be valid for"), "{refused}");
        assert_eq!(file.states(), before);
    }

    #[test]
    fn a_step_that_changes_nothing_is_refused_naming_the_next_one() {
        let file = File::new("noop");
        let before = file.states();
        let refused = step(&file.0, Rotation::SignWithNext, false).unwrap_err();
        assert!(
            refused.to_string().contains("`publish` is the next step"),
            "{refused}"
        );
        assert_eq!(file.states(), before);
    }
}
