//! A scenario's rows as an SVG figure (feature `plot`): time to train, cost and energy against
//! chips on log-log axes, one series per hardware label; and, when every hardware label has a
//! single chip count, cost against time with one labelled point per row (the Pareto view).

use super::Row;
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Axis title of the time panel.
const TIME: &str = "time to train (days, with failures)";
/// Axis title of the cost panel.
const COST: &str = "cost (USD)";
/// Axis title of the energy panel.
const ENERGY: &str = "energy (MWh)";
/// Axis title of the chip count.
const CHIPS: &str = "chips";

/// Render `rows` as an SVG document titled `title`.
///
/// Three panels, each against chips on log-log axes with one series per hardware label (rows
/// grouped by [`Row::hardware`], sorted by chips): time to train with failures
/// (`effective_train_days`, or `train_days` when no assessment was made), cost (USD) and
/// energy (MWh). When there are several hardware labels with one chip count each, a fourth panel
/// plots cost against time with one labelled point per row and the non-dominated points joined.
/// Values that are missing (`None`), zero or not finite are skipped.
///
/// # Errors
/// [`Error::Input`] at `plot` when there are no rows or the drawing fails.
pub fn plot_svg(rows: &[Row], title: &str) -> Result<String> {
    if rows.is_empty() {
        return Err(Error::input("plot", "no rows to plot"));
    }
    let groups = group(rows);
    let pareto = groups.len() > 1 && groups.iter().all(|(_, g)| g.len() == 1);
    let (size, grid) = if pareto {
        ((1400, 1000), (2, 2))
    } else {
        ((1800, 560), (1, 3))
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let root = root.titled(title, ("sans-serif", 24)).map_err(fail)?;
        let areas = root.split_evenly(grid);
        let panels: [(&str, &str, Value); 3] = [
            ("Time to train", TIME, days),
            ("Cost", COST, |r| r.economics.cost_usd),
            ("Energy", ENERGY, |r| r.economics.energy_mwh),
        ];
        for (i, ((caption, y_title, value), area)) in panels.iter().zip(&areas).enumerate() {
            against_chips(area, &groups, caption, y_title, *value, i == 0)?;
        }
        if pareto {
            if let Some(area) = areas.get(3) {
                cost_vs_time(area, rows)?;
            }
        }
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

/// What a panel plots of a row.
type Value = fn(&Row) -> Option<f64>;

/// Days to train with failures; the failure-free figure when the row has no assessment.
fn days(r: &Row) -> Option<f64> {
    if r.economics.effective_train_days > 0.0 {
        Some(r.economics.effective_train_days)
    } else {
        Some(r.train_days)
    }
}

/// A drawing failure as the library's error.
fn fail(e: impl std::fmt::Display) -> Error {
    Error::input("plot", format!("cannot draw the figure: {e}"))
}

/// Rows grouped by hardware label in order of first appearance, each group sorted by chips.
fn group(rows: &[Row]) -> Vec<(&str, Vec<&Row>)> {
    let mut groups: Vec<(&str, Vec<&Row>)> = Vec::new();
    for r in rows {
        match groups.iter_mut().find(|(h, _)| *h == r.hardware) {
            Some((_, g)) => g.push(r),
            None => groups.push((&r.hardware, vec![r])),
        }
    }
    for (_, g) in &mut groups {
        g.sort_by_key(|r| r.chips);
    }
    groups
}

/// Usable on a log axis.
fn plottable(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v > 0.0)
}

/// A log-axis range around the values, padded out to whole decades (so that every axis has
/// labelled ticks); a decade above 1 when there are none.
fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo.is_finite() && hi.is_finite() {
        10_f64.powf((lo / 1.2).log10().floor())..10_f64.powf((hi * 1.2).log10().ceil())
    } else {
        1.0..10.0
    }
}

/// Tick labels: plain for everyday magnitudes, scientific otherwise.
fn tick(v: &f64) -> String {
    let a = v.abs();
    if (0.01..10_000.0).contains(&a) {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// A distinct colour per series.
fn colour(i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 10] = [
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
    COLOURS[i % COLOURS.len()]
}

/// One panel: `value` against chips, a line and markers per hardware label.
fn against_chips<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    groups: &[(&str, Vec<&Row>)],
    caption: &str,
    y_title: &str,
    value: Value,
    legend: bool,
) -> Result<()> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = groups
        .iter()
        .map(|(h, g)| {
            let points = g
                .iter()
                .filter_map(|r| Some((plottable(Some(r.chips as f64))?, plottable(value(r))?)))
                .collect();
            (*h, points)
        })
        .collect();
    let all = || series.iter().flat_map(|(_, p)| p.iter());
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(
            range(all().map(|p| p.0)).log_scale(),
            range(all().map(|p| p.1)).log_scale(),
        )
        .map_err(fail)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc(CHIPS)
        .y_desc(y_title)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()
        .map_err(fail)?;
    for (i, (h, points)) in series.iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
            .map_err(fail)?
            .label(*h)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled())))
            .map_err(fail)?;
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(fail)?;
    }
    Ok(())
}

/// The Pareto panel: cost against time, one labelled point per row, non-dominated points joined.
fn cost_vs_time<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, rows: &[Row]) -> Result<()> {
    let points: Vec<(usize, &Row, (f64, f64))> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            Some((
                i,
                r,
                (plottable(days(r))?, plottable(r.economics.cost_usd)?),
            ))
        })
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption("Cost vs time to train (Pareto)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(
            range(points.iter().map(|p| p.2 .0)).log_scale(),
            range(points.iter().map(|p| p.2 .1)).log_scale(),
        )
        .map_err(fail)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc(TIME)
        .y_desc(COST)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()
        .map_err(fail)?;
    // The frontier: by time, each point cheaper than every faster one.
    let mut sorted: Vec<(f64, f64)> = points.iter().map(|p| p.2).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut frontier: Vec<(f64, f64)> = Vec::new();
    for p in sorted {
        if frontier.last().is_none_or(|last| p.1 < last.1) {
            frontier.push(p);
        }
    }
    chart
        .draw_series(LineSeries::new(frontier, BLACK.mix(0.4).stroke_width(1)))
        .map_err(fail)?;
    // Labels to the right of points in the left half, to the left of those in the right half.
    let x = chart.x_range();
    let middle = (x.start * x.end).sqrt();
    chart
        .draw_series(points.iter().map(|(i, r, p)| {
            let c = colour(*i);
            let (dx, h) = if p.0 > middle {
                (-9, HPos::Right)
            } else {
                (9, HPos::Left)
            };
            let style =
                TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(h, VPos::Bottom));
            EmptyElement::at(*p)
                + Circle::new((0, 0), 5, c.filled())
                + Text::new(
                    format!("{} ({} chips)", r.hardware, r.chips),
                    (dx, -4),
                    style,
                )
        }))
        .map_err(fail)?;
    Ok(())
}
