//! Every state the schema stores as text, as an enum. Decoding a value no
//! version of ctjp writes is an error, never a silent default.

use ct_core::protocol;

/// Defines a text-backed enum with `as_str`, `FromStr` and sqlx MySQL
/// encoding and decoding.
macro_rules! db_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("{:?} is not a {}", other, stringify!($name))),
                }
            }
        }

        impl sqlx::Type<sqlx::MySql> for $name {
            fn type_info() -> sqlx::mysql::MySqlTypeInfo {
                <str as sqlx::Type<sqlx::MySql>>::type_info()
            }
            fn compatible(ty: &sqlx::mysql::MySqlTypeInfo) -> bool {
                <str as sqlx::Type<sqlx::MySql>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::MySql> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut Vec<u8>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::MySql>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::MySql> for $name {
            fn decode(value: sqlx::mysql::MySqlValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<'r, sqlx::MySql>>::decode(value)?;
                s.parse().map_err(Into::into)
            }
        }
    };
}

db_enum!(
    /// `tasks.state`.
    TaskState {
        Pending => "pending",
        Leased => "leased",
        Done => "done",
        /// The log served bytes that do not hash into its tree.
        LogFault => "log_fault",
    }
);

db_enum!(
    /// `tasks.proof_state`.
    ProofState {
        Verified => "verified",
        Unproven => "unproven",
        Mismatch => "mismatch",
    }
);

db_enum!(
    /// `tasks.check_state` of a task that was checked by another worker.
    CheckState {
        Pending => "pending",
        Passed => "passed",
        Failed => "failed",
    }
);

db_enum!(
    /// `tasks.audit_state`: the manager's own re-fetch of a range.
    AuditState {
        Pending => "pending",
        Passed => "passed",
        Failed => "failed",
        /// The manager could not fetch the range (it is tried again).
        Error => "error",
    }
);

db_enum!(
    /// How a lease ended (`task_outcomes.outcome`). Every lease ends in
    /// exactly one of these, recorded by the transition that ends it.
    TaskOutcome {
        /// `complete`: the range is done and proven.
        Completed => "completed",
        /// The worker gave the task back (`fail`).
        Failed => "failed",
        /// No progress within the lease time: the reaper returned it.
        Expired => "expired",
        /// The worker's subtree hash is not the log's.
        Refused => "refused",
        /// The manager ended the lease: its worker was revoked, flagged or
        /// replaced by a new registration, or its range was redone or found
        /// to be the log's fault.
        Released => "released",
    }
);

db_enum!(
    /// `logs.kind`.
    LogKind {
        Rfc6962 => "rfc6962",
        Static => "static",
    }
);

impl From<TaskState> for protocol::TaskPhase {
    fn from(s: TaskState) -> Self {
        match s {
            TaskState::Pending => protocol::TaskPhase::Pending,
            TaskState::Leased => protocol::TaskPhase::Leased,
            TaskState::Done => protocol::TaskPhase::Done,
            TaskState::LogFault => protocol::TaskPhase::LogFault,
        }
    }
}

impl From<ProofState> for protocol::ProofState {
    fn from(s: ProofState) -> Self {
        match s {
            ProofState::Verified => protocol::ProofState::Verified,
            ProofState::Unproven => protocol::ProofState::Unproven,
            ProofState::Mismatch => protocol::ProofState::Mismatch,
        }
    }
}

impl From<LogKind> for protocol::LogKind {
    fn from(k: LogKind) -> Self {
        match k {
            LogKind::Rfc6962 => protocol::LogKind::Rfc6962,
            LogKind::Static => protocol::LogKind::Static,
        }
    }
}

impl From<protocol::LogKind> for LogKind {
    fn from(k: protocol::LogKind) -> Self {
        match k {
            protocol::LogKind::Rfc6962 => LogKind::Rfc6962,
            protocol::LogKind::Static => LogKind::Static,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_and_unknown_is_an_error() {
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>(), Ok(*s));
        }
        for s in ProofState::ALL {
            assert_eq!(s.as_str().parse::<ProofState>(), Ok(*s));
        }
        for s in TaskOutcome::ALL {
            assert_eq!(s.as_str().parse::<TaskOutcome>(), Ok(*s));
        }
        assert!("".parse::<TaskState>().is_err());
        assert!("Done".parse::<TaskState>().is_err());
        assert!("static ".parse::<LogKind>().is_err());
    }
}
