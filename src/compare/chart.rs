//! SVG charts of a scenario's runs (plotters, SVG backend): success rate, p95 latency and
//! instances in service over time with one line per setup, and requests per instance per
//! setup; the fault is a black vertical line, the end of its immediate effect a grey one.

use super::Run;
use super::report::{Second, series};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Why a chart could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// Drawing failed.
    #[error("{file}: drawing: {detail}")]
    Draw {
        /// File.
        file: String,
        /// What plotters said.
        detail: String,
    },
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 300;
const SETUP_COLORS: [RGBColor; 3] = [RGBColor(214, 39, 40), RGBColor(31, 119, 180), GREEN_700];
const GREEN_700: RGBColor = RGBColor(44, 160, 44);

/// One line: name, colour, points (seconds, value).
struct Line {
    name: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

fn draw_err(file: &str) -> impl Fn(String) -> ChartError + '_ {
    move |detail| ChartError::Draw {
        file: file.to_string(),
        detail,
    }
}

/// Lines over time on one panel, with the fault marks, as SVG text.
fn lines_svg(
    file: &str,
    title: &str,
    y_desc: &str,
    lines: &[Line],
    marks: (Option<f64>, Option<f64>),
) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        panel(&root, title, y_desc, lines, marks).map_err(draw_err(file))?;
        root.present().map_err(|e| draw_err(file)(e.to_string()))?;
    }
    Ok(svg)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    lines: &[Line],
    (fault, fault_end): (Option<f64>, Option<f64>),
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(e)?;
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y_max = if y_max <= 0.0 { 1.0 } else { y_max * 1.1 };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..x_max + 1.0, 0.0..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(y_desc)
        .max_light_lines(0)
        .draw()
        .map_err(e)?;
    for (at, color) in [(fault, BLACK), (fault_end, RGBColor(150, 150, 150))] {
        if let Some(x) = at {
            let mark = PathElement::new(vec![(x, 0.0), (x, y_max)], color.stroke_width(1));
            chart.draw_series(std::iter::once(mark)).map_err(e)?;
        }
    }
    for l in lines {
        let color = l.color;
        chart
            .draw_series(LineSeries::new(l.points.clone(), color.stroke_width(2)))
            .map_err(e)?
            .label(l.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    Ok(())
}

fn secs(ms: Option<u32>) -> Option<f64> {
    ms.map(|m| f64::from(m) / 1000.0)
}

/// Per-second points of a run (without the last second, which the end cuts short).
fn points(seconds: &[Second], value: impl Fn(&Second) -> Option<f64>) -> Vec<(f64, f64)> {
    seconds[..seconds.len().saturating_sub(1)]
        .iter()
        .filter_map(|s| value(s).map(|v| (f64::from(s.t_s) + 0.5, v)))
        .collect()
}

fn write(dir: &Path, file: &str, svg: &str) -> Result<(), ChartError> {
    let path = dir.join(file);
    std::fs::write(&path, svg).map_err(|source| ChartError::Io { path, source })
}

/// Draws the charts of `runs` (one scenario, one run per setup) into `dir`; the file names,
/// in order: success, latency, instances, load per instance.
pub fn scenario(dir: &Path, runs: &[&Run]) -> Result<Vec<String>, ChartError> {
    let Some(first) = runs.first() else {
        return Ok(Vec::new());
    };
    let name = first.scenario.name();
    let marks = (secs(first.fault_ms), None);
    let all: Vec<(&Run, Vec<Second>)> = runs.iter().map(|r| (*r, series(r))).collect();
    let per_setup = |value: &dyn Fn(&Second) -> Option<f64>| -> Vec<Line> {
        all.iter()
            .enumerate()
            .map(|(i, (r, s))| Line {
                name: r.setup.name().to_string(),
                color: SETUP_COLORS[i % SETUP_COLORS.len()],
                points: points(s, value),
            })
            .collect()
    };
    let mut files = Vec::new();
    let success = per_setup(&|s| {
        (s.requests > 0).then(|| 100.0 * (s.requests - s.errors) as f64 / s.requests as f64)
    });
    let file = format!("{name}-success.svg");
    let title = format!("{name}: success rate per second");
    write(
        dir,
        &file,
        &lines_svg(&file, &title, "success %", &success, marks)?,
    )?;
    files.push(file);
    let latency = per_setup(&|s| (s.requests > s.errors).then_some(s.p95_ms));
    let file = format!("{name}-latency.svg");
    let title = format!("{name}: p95 latency per second");
    write(
        dir,
        &file,
        &lines_svg(&file, &title, "ms", &latency, marks)?,
    )?;
    files.push(file);
    let capacity: Vec<Line> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| Line {
            name: r.setup.name().to_string(),
            color: SETUP_COLORS[i % SETUP_COLORS.len()],
            points: r
                .capacity
                .iter()
                .map(|&(t, n)| (f64::from(t) / 1000.0, f64::from(n)))
                .collect(),
        })
        .collect();
    let file = format!("{name}-instances.svg");
    let title = format!("{name}: instances in service");
    write(
        dir,
        &file,
        &lines_svg(&file, &title, "instances", &capacity, marks)?,
    )?;
    files.push(file);
    let file = format!("{name}-load.svg");
    write(dir, &file, &load_svg(&file, name, &all)?)?;
    files.push(file);
    Ok(files)
}

/// Successful requests per second per instance, one panel per setup.
fn load_svg(file: &str, name: &str, all: &[(&Run, Vec<Second>)]) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let height = HEIGHT * all.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let panels = root.split_evenly((all.len().max(1), 1));
        for ((run, seconds), area) in all.iter().zip(panels.iter()) {
            let lines: Vec<Line> = run
                .instances
                .iter()
                .enumerate()
                .map(|(i, id)| Line {
                    name: id.clone(),
                    color: color(i),
                    points: points(seconds, |s| s.per_instance.get(i).map(|&n| n as f64)),
                })
                .collect();
            let title = format!(
                "{name}, {}: requests per second per instance",
                run.setup.name()
            );
            let marks = (secs(run.fault_ms), secs(run.fault_end_ms));
            panel(area, &title, "requests/s", &lines, marks).map_err(draw_err(file))?;
        }
        root.present().map_err(|e| draw_err(file)(e.to_string()))?;
    }
    Ok(svg)
}

/// A distinct colour per instance.
fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}
