//! Prometheus metrics in the text exposition format: process counters kept
//! in atomics, plus gauges read from the database at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::MySqlPool;

use crate::error::Result;

/// Counters of this process.
#[derive(Debug, Default)]
pub struct Metrics {
    pub registrations: AtomicU64,
    pub claims: AtomicU64,
    pub tasks_leased: AtomicU64,
    pub heartbeats: AtomicU64,
    pub uploads: AtomicU64,
    pub entries_new: AtomicU64,
    pub entries_duplicate: AtomicU64,
    pub entries_rejected: AtomicU64,
    pub tasks_completed: AtomicU64,
    pub tasks_failed: AtomicU64,
    pub leases_expired: AtomicU64,
    pub sth_verified: AtomicU64,
    pub sth_unverified: AtomicU64,
    pub sth_fetch_errors: AtomicU64,
    /// HTTP requests to logs for range proofs (proofs and hash tiles).
    pub proof_requests: AtomicU64,
    pub ranges_verified: AtomicU64,
    pub ranges_unproven: AtomicU64,
    pub ranges_mismatched: AtomicU64,
    pub workers_flagged: AtomicU64,
    /// HTTP requests to logs for the manager's own audits and second opinions.
    pub audit_requests: AtomicU64,
    pub audits_passed: AtomicU64,
    pub audits_failed: AtomicU64,
    pub registrations_refused: AtomicU64,
}

/// Adds to a counter.
pub fn inc(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

impl Metrics {
    /// Renders every metric.
    pub async fn render(&self, pool: &MySqlPool) -> Result<String> {
        let mut out = String::with_capacity(4096);
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            &mut out,
            "ctjp_registrations_total",
            "Workers registered.",
            g(&self.registrations),
        );
        counter(
            &mut out,
            "ctjp_claims_total",
            "Claim calls.",
            g(&self.claims),
        );
        counter(
            &mut out,
            "ctjp_tasks_leased_total",
            "Tasks leased.",
            g(&self.tasks_leased),
        );
        counter(
            &mut out,
            "ctjp_heartbeats_total",
            "Heartbeat calls.",
            g(&self.heartbeats),
        );
        counter(
            &mut out,
            "ctjp_uploads_total",
            "Upload calls.",
            g(&self.uploads),
        );
        counter(
            &mut out,
            "ctjp_entries_new_total",
            "Uploaded entries stored.",
            g(&self.entries_new),
        );
        for (name, help, c) in [
            (
                "ctjp_proof_requests_total",
                "HTTP requests to logs for range proofs.",
                &self.proof_requests,
            ),
            (
                "ctjp_ranges_verified_total",
                "Ranges proven against a signed tree head.",
                &self.ranges_verified,
            ),
            (
                "ctjp_ranges_unproven_total",
                "Range checks that could not prove.",
                &self.ranges_unproven,
            ),
            (
                "ctjp_ranges_mismatched_total",
                "Ranges whose reported subtree hash was not the log's.",
                &self.ranges_mismatched,
            ),
            (
                "ctjp_workers_flagged_total",
                "Workers flagged by hidden-entry checks.",
                &self.workers_flagged,
            ),
        ] {
            counter(&mut out, name, help, g(c));
        }
        counter(
            &mut out,
            "ctjp_entries_duplicate_total",
            "Uploaded entries already stored.",
            g(&self.entries_duplicate),
        );
        counter(
            &mut out,
            "ctjp_entries_rejected_total",
            "Uploaded entries rejected.",
            g(&self.entries_rejected),
        );
        counter(
            &mut out,
            "ctjp_tasks_completed_total",
            "Tasks completed.",
            g(&self.tasks_completed),
        );
        counter(
            &mut out,
            "ctjp_tasks_failed_total",
            "Tasks given back by workers.",
            g(&self.tasks_failed),
        );
        counter(
            &mut out,
            "ctjp_leases_expired_total",
            "Leases expired and returned to the pool.",
            g(&self.leases_expired),
        );
        counter(
            &mut out,
            "ctjp_sth_verified_total",
            "Tree heads fetched and verified.",
            g(&self.sth_verified),
        );
        counter(
            &mut out,
            "ctjp_sth_unverified_total",
            "Tree heads whose signature did not verify.",
            g(&self.sth_unverified),
        );
        counter(
            &mut out,
            "ctjp_sth_fetch_errors_total",
            "Tree head fetches that failed.",
            g(&self.sth_fetch_errors),
        );

        counter(
            &mut out,
            "ctjp_audit_requests_total",
            "HTTP requests to logs for the manager's own audits of completed ranges.",
            g(&self.audit_requests),
        );
        counter(
            &mut out,
            "ctjp_audits_passed_total",
            "Audited ranges whose completer's set equals the manager's.",
            g(&self.audits_passed),
        );
        counter(
            &mut out,
            "ctjp_audits_failed_total",
            "Audited ranges whose completer omitted matches.",
            g(&self.audits_failed),
        );
        counter(
            &mut out,
            "ctjp_registrations_refused_total",
            "Registrations refused (rate limit per address, secret).",
            g(&self.registrations_refused),
        );
        let rows: Vec<(ct_db::TaskState, i64)> =
            sqlx::query_as("SELECT state, CAST(COUNT(*) AS SIGNED) FROM tasks GROUP BY state")
                .fetch_all(pool)
                .await?;
        let _ = writeln!(
            out,
            "# HELP ctjp_tasks Tasks by state.\n# TYPE ctjp_tasks gauge"
        );
        for (state, n) in rows {
            let _ = writeln!(out, "ctjp_tasks{{state=\"{state}\"}} {n}");
        }
        let (certs,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS SIGNED) FROM certificates")
            .fetch_one(pool)
            .await?;
        let _ = writeln!(
            out,
            "# HELP ctjp_certificates Stored matching certificates.\n# TYPE ctjp_certificates gauge\nctjp_certificates {certs}"
        );
        let (workers,): (i64,) =
            sqlx::query_as("SELECT CAST(COUNT(*) AS SIGNED) FROM workers WHERE revoked = 0")
                .fetch_one(pool)
                .await?;
        let _ = writeln!(
            out,
            "# HELP ctjp_workers Registered workers not revoked.\n# TYPE ctjp_workers gauge\nctjp_workers {workers}"
        );
        Ok(out)
    }
}
