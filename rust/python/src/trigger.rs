//! Python triggers (API.md §4) adapted to the core's `Trigger` trait.
//!
//! A trigger is one of: a native `every(...)` trigger; an instance of the
//! Python `Trigger` base class (its `run` method is called); or any callable
//! that takes the context and returns an awaitable. Each is classified once,
//! when the runner is built, so a bad item fails there with its index.

use std::sync::{Arc, OnceLock};

use agent_triggers_core::sync::Mutex;

use agent_triggers_core::{
    Event, EventHandler, Result as CoreResult, Trigger as CoreTrigger,
    TriggerContext as CoreContext, TriggerDelivery, source_trigger,
};
use async_trait::async_trait;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyType};
use pyo3::{PyTraverseError, PyVisit};

use crate::arguments::{str_argument, type_name};
use crate::connection::PyConnection;
use crate::delivery;
use crate::event_loop::{CallArgs, CallHandle, CallSpec, EventLoop, PythonCall, report_failure_of};
use crate::native::{NativeTrigger, SourceSpec};

/// One validated trigger of a runner.
pub struct TriggerSpec {
    /// The object the user passed.
    object: Py<PyAny>,
    name: Arc<str>,
    delivery: TriggerDelivery,
    kind: Kind,
}

enum Kind {
    /// A native trigger (`every`, `cron`, `after`, `at`, `on_file_change`):
    /// events from a Rust source, `callback(ctx, ...)` run on the loop for each.
    Native {
        source: SourceSpec,
        callback: Py<PyAny>,
    },
    /// A coroutine trigger: `callable(ctx)` run once on the loop.
    Call { callable: Py<PyAny> },
}

fn trigger_base_class(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static BASE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    BASE.import(py, "agent_triggers._trigger", "Trigger")
}

/// The name of `triggers[index]`: its `name` attribute if it is a `str`, else
/// its `__name__`, else its type's name.
fn trigger_name(index: usize, object: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = object.py();
    for attribute in [intern!(py, "name"), intern!(py, "__name__")] {
        if let Some(value) = object.getattr_opt(attribute)?
            && value.is_instance_of::<PyString>()
        {
            return str_argument(&value, &format!("triggers[{index}].{attribute}"));
        }
    }
    Ok(type_name(object))
}

impl TriggerSpec {
    /// Classify `triggers[index]`; `TypeError` naming the index if it is no trigger.
    pub fn classify(index: usize, object: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = object.py();
        if let Ok(native) = object.cast::<NativeTrigger>() {
            let native = native.get();
            return Ok(Self {
                object: object.clone().unbind(),
                name: native.name().into(),
                delivery: native.delivery(),
                kind: Kind::Native {
                    source: native.source().clone(),
                    callback: native.callback().clone_ref(py),
                },
            });
        }
        let callable = if object.is_instance(trigger_base_class(py)?)? {
            object.getattr(intern!(py, "run"))?
        } else if object.is_callable() {
            object.clone()
        } else {
            return Err(PyTypeError::new_err(format!(
                "triggers[{index}] is not a trigger: expected an async callable taking the \
                 context, a Trigger instance or a native trigger such as every(...), got {}",
                type_name(object)
            )));
        };
        let delivery = match object.getattr_opt(intern!(py, "delivery"))? {
            Some(value) if !value.is_none() => {
                delivery::from_python(&value, &format!("triggers[{index}].delivery"))?
            }
            _ => TriggerDelivery::WaitIdle,
        };
        Ok(Self {
            object: object.clone().unbind(),
            name: trigger_name(index, object)?.into(),
            delivery,
            kind: Kind::Call {
                callable: callable.unbind(),
            },
        })
    }

    /// How to run this trigger on `event_loop`, with a context of its own
    /// bound to `connection`.
    pub fn build(
        &self,
        py: Python<'_>,
        connection: &Arc<PyConnection>,
        event_loop: &Arc<EventLoop>,
    ) -> PyResult<Built> {
        let args = CallArgs::context(Arc::clone(connection), self.delivery);
        let callable = match &self.kind {
            Kind::Native { callback, .. } => callback.clone_ref(py),
            // Run inside `run_trigger`, which logs a failure in the step that raises.
            Kind::Call { callable } => run_trigger(py, &self.name, callable)?,
        };
        let spec = Arc::new(CallSpec::new(Arc::clone(&self.name), callable, args));
        let trigger: Arc<dyn CoreTrigger> = match &self.kind {
            // Periodic triggers wait on the timer thread, not as a task.
            Kind::Native {
                source: SourceSpec::Every(period),
                ..
            } => {
                return Ok(Built {
                    spec,
                    run: Run::Periodic(*period),
                });
            }
            Kind::Native { source, .. } => {
                let spec = Arc::clone(&spec);
                let event_loop = Arc::clone(event_loop);
                // A failing callback is logged and the trigger goes on.
                let handler: EventHandler = Arc::new(move |_: CoreContext, event: Event| {
                    let call = Arc::clone(&event_loop).call_and_report(Arc::clone(&spec), event);
                    Box::pin(async move {
                        call.await;
                        Ok(())
                    })
                });
                source_trigger(&*self.name, self.delivery, source.factory()?, handler)
            }
            Kind::Call { .. } => {
                return Ok(Built {
                    run: Run::Coroutine(Arc::new(PythonTrigger {
                        spec: Arc::clone(&spec),
                        delivery: self.delivery,
                        event_loop: Arc::clone(event_loop),
                        launched: Mutex::new(None),
                        handle: OnceLock::new(),
                    })),
                    spec,
                });
            }
        };
        Ok(Built {
            spec,
            run: Run::Task(trigger),
        })
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.object)?;
        match &self.kind {
            Kind::Native { callback, .. } => visit.call(callback),
            Kind::Call { callable } => visit.call(callable),
        }
    }
}

/// A trigger ready to start.
pub struct Built {
    /// The Python call it makes (shown to the garbage collector while running).
    pub spec: Arc<CallSpec>,
    pub run: Run,
}

/// How a built trigger runs.
pub enum Run {
    /// As a task of the core runner.
    Task(Arc<dyn CoreTrigger>),
    /// A coroutine trigger: its asyncio task made by `start()` itself (see
    /// [`PythonTrigger::launch`]), then owned by a task of the core runner.
    Coroutine(Arc<PythonTrigger>),
    /// As a schedule on the timer thread (`every`), every this long.
    Periodic(std::time::Duration),
}

/// A coroutine trigger: one asyncio task on the runner's loop, owned by the
/// core task that awaits it. Aborting the core task cancels the asyncio task.
///
/// The asyncio task is made by `start()`, on the loop, before it returns
/// ([`launch`](Self::launch)): after `await start(); await asyncio.sleep(0)`
/// every coroutine trigger has run to its first `await`, as under
/// Antigravity's runner. The core task then takes the call over.
pub struct PythonTrigger {
    spec: Arc<CallSpec>,
    delivery: TriggerDelivery,
    event_loop: Arc<EventLoop>,
    /// The call `launch` made, until the core task takes it — or a stop
    /// that came first lets go of it (see [`let_go`](Self::let_go)).
    launched: Mutex<Option<PythonCall>>,
    /// Cancels that call, whoever holds it.
    handle: OnceLock<CallHandle>,
}

impl PythonTrigger {
    /// On the loop thread, in `start()`: make the trigger's asyncio task
    /// (scheduled on the loop; none of its code has run yet).
    pub fn launch(&self, py: Python<'_>) -> PyResult<()> {
        let call = self.event_loop.call_now(py, Arc::clone(&self.spec))?;
        let _ = self.handle.set(call.handle());
        *self.launched.lock() = Some(call);
        Ok(())
    }

    /// On the loop thread, in `stop()`: cancel the trigger's task now, before
    /// the stop's first wait, as Antigravity's runner does: a trigger stopped
    /// right after `start()` never runs.
    pub fn cancel_now(&self, py: Python<'_>) {
        if let Some(handle) = self.handle.get() {
            handle.cancel_now(py);
        }
    }

    /// Cancel the call if no core task took it (one aborted before its first
    /// poll): nothing else would, and `stop()` waits for it to finish.
    pub fn let_go(&self) {
        drop(self.launched.lock().take());
    }
}

#[async_trait]
impl CoreTrigger for PythonTrigger {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn delivery(&self) -> TriggerDelivery {
        self.delivery
    }

    async fn run(&self, _ctx: CoreContext) -> CoreResult<()> {
        let Some(call) = self.launched.lock().take() else {
            return Ok(());
        };
        // The trigger's own failures were logged by `run_trigger`; what is
        // left is a failure to run it at all (say, a task factory that raised).
        report_failure_of(&self.spec.name, call).await;
        Ok(())
    }
}

/// `functools.partial(run_trigger, name, callable)`: the trigger run inside
/// `agent_triggers._trigger_task.run_trigger`.
fn run_trigger(py: Python<'_>, name: &str, callable: &Py<PyAny>) -> PyResult<Py<PyAny>> {
    static PARTIAL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static RUN_TRIGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let run = RUN_TRIGGER.import(py, "agent_triggers._trigger_task", "run_trigger")?;
    let partial = PARTIAL.import(py, "functools", "partial")?;
    Ok(partial.call1((run, name, callable))?.unbind())
}
