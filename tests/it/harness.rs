use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::io::Write;

/// A temporary folder with a fresh identity (`id.txt`, mode 0600) and its recipient.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub recipient: String,
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {}", self.stderr);
        self
    }
    #[track_caller]
    pub fn fails(self) -> Self {
        assert_ne!(self.code, 0, "command succeeded: {}", self.stdout);
        self
    }
    /// The error line, which must be the only line on stderr.
    #[track_caller]
    pub fn error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got {:?}",
            self.stderr
        );
        lines[0]
    }
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gitops-seal"));
    c.env_remove("GITOPS_SEAL_IDENTITY")
        .env_remove("VISUAL")
        .env_remove("EDITOR");
    c
}

impl Sandbox {
    /// With a post-quantum identity (what `keygen` makes).
    pub fn new() -> Self {
        Sandbox::with_keygen(&[])
    }

    /// With a classical X25519 identity (`keygen --x25519`), for tools that open only those.
    pub fn x25519() -> Self {
        Sandbox::with_keygen(&["--x25519"])
    }

    fn with_keygen(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sandbox {
            dir,
            recipient: String::new(),
        };
        let mut args = vec!["keygen", "-o", "id.txt"];
        args.extend(extra);
        s.run(&args).ok();
        s.recipient = s
            .run(&["recipient", "-i", "id.txt"])
            .ok()
            .stdout
            .trim()
            .to_string();
        s
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, contents).unwrap();
        p
    }

    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = bin();
        c.args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path(".config"))
            .env("XDG_RUNTIME_DIR", self.path("run"));
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, b"")
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_command(self.command(args), stdin)
    }

    /// Every file in the sandbox with its bytes, to prove a failed command wrote nothing.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        snapshot_dir(self.dir.path(), &mut out);
        out.sort();
        out
    }

    /// Makes another identity file in the sandbox and returns its recipient.
    pub fn new_identity(&self, file: &str) -> String {
        self.run(&["keygen", "-o", file]).ok();
        self.run(&["recipient", "-i", file])
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    /// Seals `plain` (written as `name`) in place for the sandbox recipient.
    pub fn seal(&self, name: &str, plain: &str) {
        self.seal_with(&[], name, plain);
    }

    /// [`Sandbox::seal`] with more arguments for `encrypt` (`--scope cluster`).
    pub fn seal_with(&self, extra: &[&str], name: &str, plain: &str) {
        self.write(name, plain);
        let recipient = self.recipient.clone();
        let mut args = vec!["encrypt", "--in-place", "-r", &recipient];
        args.extend(extra);
        args.push(name);
        self.run(&args).ok();
    }
}

pub fn run_command(mut c: Command, stdin: &[u8]) -> Run {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn snapshot_dir(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            snapshot_dir(&p, out);
        } else {
            out.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
}

/// The `encryptedData` value of `key` in a sealed YAML text.
pub fn ciphertext_line<'a>(sealed: &'a str, key: &str) -> &'a str {
    let prefix = format!("    {key}: ");
    sealed
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {sealed}"))
}

pub const MIXED: &str = "# config first\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata:\n  mode: \"0777\"   # comment kept\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n  labels: {app: db}\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{\"data\":{\"password\":\"aHVudGVyMg==\"}}'\ntype: Opaque\ndata:\n  password: aHVudGVyMg==\n  user: b2xk\nstringData:\n  user: admin\n";

/// `PATH` with the built binary first, as a user who installed it would have it: Git runs
/// `gitops-seal` by name from hooks, merge drivers and textconv.
pub fn path_with_binary() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_gitops-seal"))
        .parent()
        .unwrap()
        .to_path_buf();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs the real `git` in the sandbox with a private HOME and no system config.
pub fn git(s: &Sandbox, args: &[&str]) -> Run {
    git_env(s, args, &[])
}

pub fn git_env(s: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new("git");
    c.args(args)
        .current_dir(s.dir.path())
        .env("PATH", path_with_binary())
        .env("HOME", s.dir.path())
        .env("XDG_CONFIG_HOME", s.path(".config"))
        .env_remove("GITOPS_SEAL_IDENTITY")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com");
    for (k, v) in env {
        c.env(k, v);
    }
    run_command(c, b"")
}
