mod author;
mod backfill;
mod check;
mod check_inputs;
mod diff;
mod doctor;
mod environment;
mod incidents;
mod init;
mod lineage;
mod model_test;
mod optimize;
mod plan;
mod promote;
mod quarantine;
mod query;
mod queue;
mod recover;
mod replay;
mod run;
mod runs;
mod serve;
mod shadow;
mod show;
mod slo;
mod status;
mod vacuum;

use std::path::Path;

pub use author::SAMPLE_ROWS;
pub use lineage::LineageFormat;
use weir_model::{Diagnostics, Project, load_project};

use crate::Outcome;
use crate::cli::{Cli, Command, ContractCommand, IncidentCommand, NewCommand};

pub async fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Init { dir, empty, json } => init::init(&dir, empty, json),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut crate::cli::Cli::command(),
                "weir",
                &mut std::io::stdout(),
            );
            Ok(Outcome::Ok)
        }
        Command::Contract {
            command:
                ContractCommand::Infer {
                    file,
                    name,
                    format,
                    rows,
                    out,
                    owner,
                    common,
                },
        } => {
            let args = author::InferArgs {
                file,
                name,
                format: format.map(Into::into),
                rows,
                out,
                owner,
            };
            author::contract_infer(&args, common.json)
        }
        Command::New {
            command:
                NewCommand::Source {
                    name,
                    from,
                    format,
                    owner,
                    common,
                },
        } => author::new_source(
            &common.project,
            &name,
            &from,
            format.map(Into::into),
            owner,
            common.json,
        ),
        Command::New {
            command:
                NewCommand::Model {
                    name,
                    sql,
                    owner,
                    common,
                },
        } => author::new_model(&common.project, &name, &sql, owner, common.json).await,
        Command::Demo { dir, json } => {
            if !dir.join("weir.toml").exists() {
                init::scaffold(&dir, json)?;
            } else if !json {
                eprintln!("using the existing demo project in {}", dir.display());
            }
            run::run(
                &dir,
                &[],
                run::Mode::default(),
                weir_orchestrate::DEFAULT_THREADS,
                json,
            )
            .await
        }
        Command::Check {
            deny_warnings,
            common,
        } => check::check(&common.project, deny_warnings, common.json).await,
        Command::Run {
            assets,
            full_refresh,
            partition,
            env,
            threads,
            common,
        } => {
            run::run(
                &common.project,
                &assets,
                run::Mode {
                    full_refresh,
                    partition,
                    env,
                },
                usize::from(threads),
                common.json,
            )
            .await
        }
        Command::Backfill {
            asset,
            from,
            to,
            enqueue_only,
            max_attempts,
            common,
        } => {
            let request = weir_server::BackfillRequest {
                asset,
                from,
                to,
                enqueue_only,
                max_attempts,
            };
            backfill::run(&common.project, &request, common.json).await
        }
        Command::Doctor { dry_run, common } => {
            doctor::doctor(&common.project, dry_run, common.json).await
        }
        Command::Show { asset, common } => show::show(&common.project, &asset, common.json).await,
        Command::Query {
            sql,
            at,
            as_of,
            env,
            csv,
            common,
        } => {
            let format = if common.json {
                query::Format::Json
            } else if csv {
                query::Format::Csv
            } else {
                query::Format::Table
            };
            query::query(
                &common.project,
                &sql,
                at,
                as_of.as_deref(),
                env.as_deref(),
                format,
            )
            .await
        }
        Command::Lineage {
            selectors,
            format,
            common,
        } => {
            let format = match (format, common.json) {
                (Some(f), true) if f != LineageFormat::Json => {
                    return Ok(crate::output::user_error(
                        "usage",
                        "--json prints lineage as JSON; it cannot be combined with another --format",
                    ));
                }
                (_, true) => LineageFormat::Json,
                (f, false) => f.unwrap_or(LineageFormat::Mermaid),
            };
            lineage::lineage(&common.project, &selectors, format).await
        }
        Command::Serve {
            addr,
            grace_secs,
            common,
        } => serve::run(&common.project, addr, grace_secs, common.json).await,
        Command::Worker { grace_secs, common } => {
            serve::work(&common.project, grace_secs, common.json).await
        }
        Command::Optimize {
            selectors,
            target_mb,
            common,
        } => optimize::run(&common.project, &selectors, target_mb, common.json).await,
        Command::Vacuum {
            selectors,
            apply,
            retain,
            common,
        } => {
            let options = weir_orchestrate::VacuumOptions {
                apply,
                retain_hours: retain,
            };
            vacuum::run(&common.project, &selectors, &options, common.json).await
        }
        Command::Recover { abandon, common } => {
            recover::recover(&common.project, abandon.as_deref(), common.json).await
        }
        Command::Slo { common } => slo::slo(&common.project, common.json).await,
        Command::Diff {
            a,
            b,
            key,
            abs_tolerance,
            rel_tolerance,
            time_tolerance,
            samples,
            common,
        } => {
            let options = weir_change::DiffOptions {
                key,
                abs_tolerance,
                rel_tolerance,
                time_tolerance_secs: time_tolerance,
                samples,
            };
            diff::diff(&common.project, &a, &b, &options, common.json).await
        }
        Command::Test {
            names,
            contracts,
            common,
        } => model_test::test(&common.project, &names, contracts, common.json).await,
        Command::Plan { common } => plan::plan_command(&common.project, common.json).await,
        Command::Apply {
            allow_breaking,
            common,
        } => plan::apply_command(&common.project, allow_breaking, common.json).await,
        Command::Promote {
            environment,
            common,
        } => promote::promote_command(&common.project, &environment, common.json).await,
        Command::Shadow { asset, common } => {
            shadow::shadow_command(&common.project, asset.as_deref(), common.json).await
        }
        Command::Incidents { all, since, common } => {
            incidents::list(&common.project, all, since.as_deref(), common.json).await
        }
        Command::Incident { command } => {
            let (action, common) = match command {
                IncidentCommand::Show { id, common } => (incidents::Action::Show(id), common),
                IncidentCommand::Ack { id, by, common } => {
                    (incidents::Action::Ack { id, by }, common)
                }
                IncidentCommand::Resolve {
                    id,
                    by,
                    note,
                    common,
                } => (incidents::Action::Resolve { id, by, note }, common),
                IncidentCommand::Open {
                    asset,
                    title,
                    by,
                    common,
                } => (incidents::Action::Open { asset, title, by }, common),
                IncidentCommand::Postmortem { id, out, common } => {
                    (incidents::Action::Postmortem { id, out }, common)
                }
            };
            incidents::incident(&common.project, action, common.json).await
        }
        Command::Runs {
            asset,
            status,
            limit,
            common,
        } => {
            runs::runs(
                &common.project,
                asset.as_deref(),
                status.as_deref(),
                limit,
                common.json,
            )
            .await
        }
        Command::Trigger {
            selectors,
            full_refresh,
            priority,
            server,
            common,
        } => {
            let request = queue::TriggerRequest {
                selectors,
                full_refresh,
                priority,
            };
            queue::trigger(&common.project, request, server.as_deref(), common.json).await
        }
        Command::Cancel { id, server, common } => {
            queue::cancel(&common.project, &id, server.as_deref(), common.json).await
        }
        Command::Status { common } => status::status(&common.project, common.json).await,
        Command::Quarantine {
            asset,
            run,
            rule,
            status,
            limit,
            common,
        } => {
            let filters = quarantine::Filters {
                run,
                rule,
                status,
                limit,
            };
            quarantine::quarantine(&common.project, &asset, &filters, common.json).await
        }
        Command::Replay {
            asset,
            run,
            rule,
            common,
        } => {
            let options = weir_orchestrate::ReplayOptions { run, rule };
            replay::replay(&common.project, &asset, &options, common.json).await
        }
    }
}

/// Loads the project; `None` means it has errors (exit 2), printed with its other
/// diagnostics.
///
/// A project's warnings are printed only by the commands they concern (`run`, `demo`; `check`
/// prints its own): `warnings` says whether this is one of them. The others (`show`,
/// `query`, ...) stay quiet about a loadable project.
pub(crate) fn load(root: &Path, json: bool, warnings: bool) -> Option<Project> {
    let (project, diagnostics) = load_project(root);
    if diagnostics.has_errors() {
        print_diagnostics(&diagnostics, json);
        return None;
    }
    if warnings && !json {
        print_diagnostics(&diagnostics, false);
    }
    project
}

/// The project, its graph and the assets `selectors` pick, in run order; `None` after printing
/// why not (exit 2). Every command that takes selectors starts here.
pub(crate) fn load_selection(
    root: &Path,
    selectors: &[String],
    json: bool,
    warnings: bool,
) -> Option<(Project, weir_orchestrate::AssetGraph, Vec<String>)> {
    let project = load(root, json, warnings)?;
    let graph = graph(&project, json)?;
    match weir_orchestrate::select(&project, &graph, selectors) {
        Ok(selected) => Some((project, graph, selected)),
        Err(message) => {
            let kind = if message.contains("unknown asset") {
                "unknown_asset"
            } else {
                "selection"
            };
            crate::output::user_error(kind, message);
            None
        }
    }
}

/// The asset graph, or `None` after printing why it cannot be built (exit 2).
pub(crate) fn graph(project: &Project, json: bool) -> Option<weir_orchestrate::AssetGraph> {
    let (graph, diagnostics) = weir_orchestrate::build_graph(project);
    if diagnostics.iter().all(|d| d.is_warning) {
        return Some(graph);
    }
    print_diagnostics(&Diagnostics(diagnostics), json);
    None
}

pub(crate) fn print_diagnostics(diagnostics: &Diagnostics, as_json: bool) {
    if as_json {
        let errors = diagnostics.errors().count();
        let mut doc =
            serde_json::json!({ "diagnostics": crate::output::diagnostics_json(diagnostics) });
        if errors > 0 {
            doc["error"] = serde_json::json!({
                "kind": "project",
                "message": format!("the project has {}; see diagnostics", crate::output::count(errors, "error")),
            });
        }
        crate::output::print_json(doc);
        return;
    }
    for d in &diagnostics.0 {
        eprintln!("{d}");
    }
}

/// The selected assets, under their leases and after recovery (its held assets are to be
/// left alone): where the upkeep commands (`vacuum`, `optimize`) start. `None` after printing
/// why not (exit 2).
pub(crate) async fn upkeep_selection(
    root: &Path,
    selectors: &[String],
    json: bool,
) -> anyhow::Result<Option<Upkeep>> {
    let Some((project, _, selected)) = load_selection(root, selectors, json, false) else {
        return Ok(None);
    };
    let (state, recovery) = open_and_recover(&project, json).await?;
    // Nobody stages files in (or commits to) a table while it is vacuumed or compacted.
    let leases = weir_orchestrate::AssetLeases::acquire(&state, &selected).await?;
    Ok(Some(Upkeep {
        project,
        selected,
        recovery,
        state,
        leases,
    }))
}

/// What `weir vacuum` and `weir optimize` work with: the selected assets, under their leases.
pub(crate) struct Upkeep {
    pub project: Project,
    pub selected: Vec<String>,
    pub recovery: weir_orchestrate::Recovery,
    pub state: weir_orchestrate::StateStore,
    pub leases: weir_orchestrate::AssetLeases,
}

impl Upkeep {
    /// Gives the leases back and closes the state store.
    pub async fn done(self) -> anyhow::Result<()> {
        self.leases.release().await?;
        self.state.close().await;
        Ok(())
    }
}

/// What every command that writes starts with: the state store, and the recovery of whatever
/// a killed process left behind (with what opening the store had to repair first), printed
/// unless the output is JSON. Each asset is then written under its lease.
pub(crate) async fn open_and_recover(
    project: &Project,
    json: bool,
) -> anyhow::Result<(weir_orchestrate::StateStore, weir_orchestrate::Recovery)> {
    let state = weir_orchestrate::StateStore::connect(&project.state_url()).await?;
    let mut recovery = weir_orchestrate::recover_pending(project, &state).await?;
    if project.environment.is_none() {
        let promoted = weir_orchestrate::recover_promotion(project, &state).await?;
        recovery.messages.extend(promoted);
    }
    recovery
        .messages
        .splice(0..0, state.notices().iter().cloned());
    if !json {
        crate::output::print_recovery(&recovery);
    }
    Ok((state, recovery))
}
