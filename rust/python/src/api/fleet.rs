//! `RedisFleet`: where a fleet's claims live and how this replica behaves
//! (docs/contract.md §9, docs/fleet.md).

use agent_triggers_core::fleet::{FleetConfig, OnUnavailable};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::arguments::{parse_seconds, str_argument, type_name};
use crate::run::fleet::replica_name;

/// RedisFleet(url, *, replica=None, claim_ttl=None, on_unavailable="skip")
/// --
///
/// The replicas of one agent service, agreeing in Redis on who runs each tick
/// of a keyed trigger. Pass it as ``TriggerRunner(..., fleet=...)``; give the
/// triggers to share a ``key=`` (``every``, ``cron``, ``at``).
///
/// - ``url``: a ``redis://`` or ``rediss://`` (TLS) URL, with a password and a
///   database number if needed. Nothing connects until a runner starts; a
///   Redis that cannot be reached then is handled as ``on_unavailable`` says.
/// - ``replica``: this process's name in its claims; default
///   ``"{hostname}:{pid}"`` (taken when a runner starts, so a forked child
///   has its own).
/// - ``claim_ttl``: seconds (or ``timedelta``) a claim lives in Redis;
///   default 10, at least 1. Replicas' clocks must agree to within half of it.
/// - ``on_unavailable``: ``"skip"`` (a tick no replica could claim is skipped,
///   one WARNING per outage) or ``"run"`` (run it here).
///
/// ``repr()`` and ``str()`` show the URL with its password as ``***``.
#[pyclass(frozen, module = "agent_triggers._core")]
pub struct RedisFleet {
    config: FleetConfig,
}

impl RedisFleet {
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }
}

#[pymethods]
impl RedisFleet {
    #[new]
    #[pyo3(signature = (url, *, replica = None, claim_ttl = None, on_unavailable = None))]
    fn py_new(
        url: &Bound<'_, PyAny>,
        replica: Option<&Bound<'_, PyAny>>,
        claim_ttl: Option<&Bound<'_, PyAny>>,
        on_unavailable: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // Not `str_argument`: its errors may quote the value, and this one
        // holds a password.
        let url: String = url
            .cast::<pyo3::types::PyString>()
            .map_err(|_| {
                PyTypeError::new_err(format!("url must be a str, not {}", type_name(url)))
            })?
            .to_cow()
            // Not the encoding error itself: it would carry the whole URL.
            .map_err(|_| {
                PyValueError::new_err("url must be encodable as UTF-8 (it holds a lone surrogate)")
            })?
            .into_owned();
        let replica = match replica {
            None => None,
            Some(value) if value.is_none() => None,
            Some(value) => {
                let replica = str_argument(value, "replica")?;
                if replica.is_empty() {
                    return Err(PyValueError::new_err("replica must not be empty"));
                }
                Some(replica)
            }
        };
        let claim_ttl = match claim_ttl {
            Some(value) if !value.is_none() => Some(parse_seconds(value, "claim_ttl", false)?.0),
            _ => None,
        };
        let on_unavailable = match on_unavailable {
            Some(value) if !value.is_none() => {
                match str_argument(value, "on_unavailable")?.as_str() {
                    "skip" => OnUnavailable::Skip,
                    "run" => OnUnavailable::Run,
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "on_unavailable must be \"skip\" or \"run\", not {other:?}"
                        )));
                    }
                }
            }
            _ => OnUnavailable::Skip,
        };
        let config = FleetConfig::new(&url, replica, claim_ttl, on_unavailable)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self { config })
    }

    /// The URL, with its password (if any) shown as ``***``.
    #[getter]
    fn url(&self) -> &str {
        self.config.redacted_url()
    }

    /// This replica's name in its claims (the default is worked out now).
    #[getter]
    fn replica(&self, py: Python<'_>) -> PyResult<String> {
        replica_name(py, &self.config)
    }

    /// Seconds a claim lives in Redis.
    #[getter]
    fn claim_ttl(&self) -> f64 {
        self.config.claim_ttl().as_secs_f64()
    }

    /// ``"skip"`` or ``"run"``.
    #[getter]
    fn on_unavailable(&self) -> &'static str {
        match self.config.on_unavailable() {
            OnUnavailable::Skip => "skip",
            OnUnavailable::Run => "run",
        }
    }

    /// A fleet is a shared configuration: copies are itself.
    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }

    /// Never pickled: the pickle would carry the password.
    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "a RedisFleet cannot be pickled (it holds a password); make one in each process",
        ))
    }

    fn __repr__(&self) -> String {
        let replica = match self.config.replica() {
            Some(replica) => format!("{replica:?}"),
            None => "None".to_owned(),
        };
        format!(
            "RedisFleet({:?}, replica={replica}, claim_ttl={}, on_unavailable={:?})",
            self.config.redacted_url(),
            self.claim_ttl(),
            self.on_unavailable()
        )
    }

    fn __str__(&self) -> String {
        self.__repr__()
    }
}
