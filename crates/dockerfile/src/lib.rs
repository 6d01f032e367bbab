//! Kiln's Dockerfile parser: Dockerfile text to typed instructions with
//! source spans, plus the word expansion and `.dockerignore` matching a
//! builder needs.
//!
//! Everything here is pure: no files are read, no images resolved. The
//! builder (`kiln-build`) reads the Dockerfile and ignore file, calls
//! [`parse`] and [`ignore::Rules::parse`], expands arguments with
//! [`expand_word`] in each step's environment, and decides what it does
//! not support (`RUN --mount=type=ssh`, `--security=insecure`).
//!
//! The reference for behaviour is BuildKit's Dockerfile frontend: its
//! syntax (continuations, `# escape=`, heredocs, JSON versus shell form),
//! its flags, and its error messages, each with the line it is on:
//!
//! ```
//! let err = kiln_dockerfile::parse("FROM alpine\nRUNN make\n").unwrap_err();
//! assert_eq!(err.to_string(), "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)");
//! ```
//!
//! ```
//! use kiln_dockerfile::{parse, Command, InstructionKind};
//! let file = parse("ARG V=3.12\nFROM python:$V AS base\nRUN --mount=type=cache,target=/root/.cache pip install torch\n").unwrap();
//! assert_eq!(file.stages[0].name.as_deref(), Some("base"));
//! let InstructionKind::Run(run) = &file.stages[0].instructions[0].kind else { panic!() };
//! assert_eq!(run.command, Command::Shell("pip install torch".into()));
//! assert_eq!(run.mounts[0].target.as_deref(), Some("/root/.cache"));
//! ```

mod directive;
mod dockerfile;
mod error;
mod flag;
mod heredoc;
pub mod ignore;
mod instruction;
mod mount;
mod substitution;
mod syntax;
mod words;

pub use directive::Directives;
pub use dockerfile::{parse, Dockerfile, Stage};
pub use error::{ErrorReason, ParseError, DEFAULT_FILE_NAME};
pub use heredoc::Heredoc;
pub use instruction::{
    Add, ArgDecl, Command, Copy, HealthCheck, Healthcheck, Instruction, InstructionKind, KeyValue,
    Keyword, NetworkMode, Onbuild, Run, Security, Source, Span,
};
pub use mount::{CacheSharing, Mount, MountError, MountType};
pub use substitution::{
    expand_word, expand_words, referenced_variables, NoVariables, SubstitutionError, Variables,
};
