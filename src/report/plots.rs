//! The page's charts, as inline SVG drawn by plotters (its SVG backend
//! only, with its naive text metrics: no font files, no bitmaps): the
//! run's timeline, lab-sink's rate, loss and latency over time, and a
//! throughput search's trials and results. Each takes plain data, so the
//! page, and any step kind that measures, can hand it what it has.
//!
//! Text given here ends up in SVG `<text>`, escaped by plotters;
//! [`svg_text`] drops what has no place in a label.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::traffic::{SinkInterval, SinkTraffic};

type Drawn = Result<(), Box<dyn std::error::Error>>;

const FAIL: RGBColor = RGBColor(0xc6, 0x28, 0x28);
const PASS: RGBColor = RGBColor(0x2e, 0x7d, 0x32);
const BAR: RGBColor = RGBColor(0x15, 0x65, 0xc0);
const BACKGROUND: RGBColor = RGBColor(0x90, 0xca, 0xf9);
const SKIP: RGBColor = RGBColor(0x9e, 0x9e, 0x9e);
const LINK: RGBColor = RGBColor(0xef, 0x6c, 0x00);
const FONT: &str = "sans-serif";

/// Draws on an SVG of `size` with `draw`; `None` when plotters fails
/// (a chart missing from the page, never a panic).
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Drawn,
) -> Option<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).ok()?;
        draw(&root).ok()?;
        root.present().ok()?;
    }
    Some(out)
}

/// Text for a chart: control characters dropped, cut to `max`
/// characters. plotters escapes markup itself (its SVG backend writes
/// every text and attribute through its own escaping).
pub fn svg_text(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().filter(|c| !c.is_control()).enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// One bar of the timeline.
#[derive(Clone, Debug)]
pub struct Span {
    pub label: String,
    /// Seconds after the run started.
    pub start: f64,
    pub end: f64,
    pub kind: SpanKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Phase,
    Passed,
    /// A background step, from its start to its wait's end.
    Background,
    Failed,
    Skipped,
}

/// A moment drawn across a chart: a link set down or up.
#[derive(Clone, Debug)]
pub struct Marker {
    pub label: String,
    /// Seconds after the run started.
    pub at: f64,
    pub failed: bool,
}

/// The run on one time axis: a row per phase and step, link-state steps
/// as markers across every row.
pub fn timeline_svg(spans: &[Span], markers: &[Marker], total: f64) -> Option<String> {
    let rows = spans.len().max(1);
    let height = (40 + 18 * rows as u32).min(4000) + 40;
    let total = if total.is_finite() {
        total.max(0.001)
    } else {
        0.001
    };
    // Times come from the report, not from the axis: one far outside it
    // overflows plotters' pixel arithmetic (a panic with overflow checks,
    // found by the fuzz target `report`), so each is held to the axis.
    let on_axis = |t: f64| {
        if t.is_finite() {
            t.clamp(0.0, total * 1.02)
        } else {
            0.0
        }
    };
    svg((960, height), |root| {
        // Row r is centred on y = rows - 1 - r: the first at the top,
        // each named by the label at its integer.
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(220)
            .build_cartesian_2d(0f64..total * 1.02, -0.5f64..rows as f64 - 0.5)?;
        let labels: Vec<String> = spans.iter().map(|s| svg_text(&s.label, 32)).collect();
        let y_of = |row: usize| (rows - 1 - row) as f64;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows.min(200))
            .y_label_formatter(&|y| {
                let k = y.round();
                if (y - k).abs() > 1e-6 || k < 0.0 || k >= rows as f64 {
                    return String::new();
                }
                labels
                    .get(rows - 1 - k as usize)
                    .cloned()
                    .unwrap_or_default()
            })
            .x_desc("seconds after the run started")
            .light_line_style(TRANSPARENT)
            .draw()?;
        chart.draw_series(spans.iter().enumerate().map(|(row, span)| {
            let color = match span.kind {
                SpanKind::Phase => SKIP.mix(0.6),
                SpanKind::Passed => PASS.mix(0.85),
                SpanKind::Background => BACKGROUND.mix(0.9),
                SpanKind::Failed => FAIL.mix(0.95),
                SpanKind::Skipped => SKIP.mix(0.3),
            };
            // A step shorter than a pixel still shows.
            let start = on_axis(span.start);
            let end = on_axis(span.end.max(span.start + total / 900.0));
            Rectangle::new(
                [(start, y_of(row) - 0.35), (end, y_of(row) + 0.35)],
                color.filled(),
            )
        }))?;
        chart.draw_series(markers.iter().map(|m| {
            PathElement::new(
                vec![(on_axis(m.at), -0.5), (on_axis(m.at), rows as f64 - 0.5)],
                (if m.failed { FAIL } else { LINK }).stroke_width(2),
            )
        }))?;
        chart.draw_series(markers.iter().map(|m| {
            Text::new(
                svg_text(&m.label, 24),
                (on_axis(m.at), -0.45),
                (FONT, 11).into_font().color(&LINK),
            )
        }))?;
        Ok(())
    })
}

/// Intervals merged so a chart has at most `points` of them: sums of
/// frames, the longest latency of the merged.
fn thin(intervals: &[SinkInterval], points: usize) -> Vec<SinkInterval> {
    let per = intervals.len().div_ceil(points.max(1)).max(1);
    intervals
        .chunks(per)
        .map(|chunk| {
            let duration_ms: f64 = chunk.iter().map(|i| i.duration_ms).sum();
            let received: u64 = chunk.iter().map(|i| i.received).sum();
            let max = |f: fn(&SinkInterval) -> Option<f64>| {
                chunk
                    .iter()
                    .filter_map(f)
                    .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            };
            SinkInterval {
                start_ms: chunk[0].start_ms,
                duration_ms,
                received,
                rate: if duration_ms > 0.0 {
                    received as f64 * 1000.0 / duration_ms
                } else {
                    0.0
                },
                lost: chunk.iter().map(|i| i.lost).sum(),
                lost_total: chunk.last().map_or(0, |i| i.lost_total),
                latency_p50_ms: max(|i| i.latency_p50_ms),
                latency_p99_ms: max(|i| i.latency_p99_ms),
                latency_max_ms: max(|i| i.latency_max_ms),
            }
        })
        .collect()
}

/// The most points a line of the page has: enough for a 960-pixel chart.
const POINTS: usize = 900;

/// lab-sink's rate (frames/s) and loss (% of the interval's frames) per
/// interval, on the run's time axis (`offset`: seconds from the run's
/// start to the sink's ready line), with `markers` (the link cuts) drawn
/// across both.
pub fn sink_rate_loss_svg(
    traffic: &SinkTraffic,
    offset: f64,
    markers: &[Marker],
) -> Option<String> {
    if traffic.intervals.is_empty() {
        return None;
    }
    let intervals = thin(&traffic.intervals, POINTS);
    let at = |i: &SinkInterval| offset + (i.start_ms + i.duration_ms) / 1000.0;
    let first = offset;
    let last = intervals.last().map_or(offset, at);
    let (x0, x1) = markers
        .iter()
        .fold((first, last), |(a, b), m| (a.min(m.at), b.max(m.at)));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let top = intervals
        .iter()
        .map(|i| i.rate)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    svg((960, 440), |root| {
        let (upper, lower) = root.split_vertically(230);
        let mut rate = ChartBuilder::on(&upper)
            .margin(8)
            .x_label_area_size(20)
            .y_label_area_size(70)
            .caption("rate (frames/s) per interval", (FONT, 14))
            .build_cartesian_2d(x0..x1, 0f64..top)?;
        rate.configure_mesh().light_line_style(TRANSPARENT).draw()?;
        rate.draw_series(LineSeries::new(
            intervals.iter().map(|i| (at(i), i.rate)),
            BAR.stroke_width(2),
        ))?;
        draw_markers(&mut rate, markers, top)?;
        let mut loss = ChartBuilder::on(&lower)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .caption("loss (% of the interval's frames)", (FONT, 14))
            .build_cartesian_2d(x0..x1, 0f64..100f64)?;
        loss.configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("seconds after the run started")
            .draw()?;
        loss.draw_series(LineSeries::new(
            intervals.iter().map(|i| (at(i), i.loss_percent())),
            FAIL.stroke_width(2),
        ))?;
        draw_markers(&mut loss, markers, 100.0)?;
        Ok(())
    })
}

type TimeChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw_markers(chart: &mut TimeChart<'_, '_>, markers: &[Marker], top: f64) -> Drawn {
    chart.draw_series(
        markers
            .iter()
            .map(|m| PathElement::new(vec![(m.at, 0.0), (m.at, top)], LINK.stroke_width(2))),
    )?;
    chart.draw_series(markers.iter().map(|m| {
        Text::new(
            svg_text(&m.label, 24),
            (m.at, top * 0.97),
            (FONT, 11).into_font().color(&LINK),
        )
    }))?;
    Ok(())
}

/// One figure of an interval.
type Reading = fn(&SinkInterval) -> Option<f64>;

/// lab-sink's one-way latency per interval (p50, p99, max, ms) on the
/// run's time axis, and its summary's percentiles as bars.
pub fn sink_latency_svg(traffic: &SinkTraffic, offset: f64) -> Option<String> {
    let intervals = thin(&traffic.intervals, POINTS);
    let at = |i: &SinkInterval| offset + (i.start_ms + i.duration_ms) / 1000.0;
    let series: [(&str, Reading, RGBColor); 3] = [
        ("p50", |i| i.latency_p50_ms, PASS),
        ("p99", |i| i.latency_p99_ms, BAR),
        ("max", |i| i.latency_max_ms, FAIL),
    ];
    let top = intervals
        .iter()
        .filter_map(|i| i.latency_max_ms)
        .fold(0.0, f64::max);
    let summary = traffic.summary.as_ref();
    let percentiles: Vec<(&str, f64)> = summary
        .map(|s| {
            [
                ("min", s.latency_min_ms),
                ("p50", s.latency_p50_ms),
                ("p99", s.latency_p99_ms),
                ("max", s.latency_max_ms),
            ]
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| (name, v)))
            .collect()
        })
        .unwrap_or_default();
    if top <= 0.0 && percentiles.is_empty() {
        return None;
    }
    let x0 = offset;
    let x1 = intervals
        .last()
        .map_or(offset + 1.0, at)
        .max(offset + 0.001);
    svg((960, 260), |root| {
        let (left, right) = root.split_horizontally(680);
        if top > 0.0 {
            let mut chart = ChartBuilder::on(&left)
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(60)
                .caption("one-way latency per interval (ms)", (FONT, 14))
                .build_cartesian_2d(x0..x1, 0f64..top * 1.1)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .x_desc("seconds after the run started")
                .draw()?;
            for (name, value, color) in series {
                chart
                    .draw_series(LineSeries::new(
                        intervals
                            .iter()
                            .filter_map(|i| value(i).map(|v| (at(i), v))),
                        color.stroke_width(2),
                    ))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        if !percentiles.is_empty() {
            let high = percentiles
                .iter()
                .map(|p| p.1)
                .fold(0.0, f64::max)
                .max(1e-6)
                * 1.2;
            let mut chart = ChartBuilder::on(&right)
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(60)
                .caption("summary percentiles (ms)", (FONT, 14))
                .build_cartesian_2d((0..percentiles.len()).into_segmented(), 0f64..high)?;
            let names: Vec<&str> = percentiles.iter().map(|p| p.0).collect();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(TRANSPARENT)
                .x_label_formatter(&|x| match x {
                    SegmentValue::CenterOf(n) => names.get(*n).copied().unwrap_or("").to_owned(),
                    _ => String::new(),
                })
                .draw()?;
            chart.draw_series(percentiles.iter().enumerate().map(|(n, (_, v))| {
                Rectangle::new(
                    [
                        (SegmentValue::Exact(n), 0.0),
                        (SegmentValue::Exact(n + 1), *v),
                    ],
                    BAR.filled(),
                )
            }))?;
        }
        Ok(())
    })
}

/// A latency histogram: `buckets` of (upper bound in ms, frames), in
/// increasing order, as bars on a logarithmic latency axis, with the
/// `percentiles` (name, ms) drawn across: lab-sink's `latency_histogram`.
pub fn latency_histogram_svg(
    buckets: &[(f64, u64)],
    percentiles: &[(&str, f64)],
) -> Option<String> {
    let buckets: Vec<(f64, u64)> = buckets
        .iter()
        .copied()
        .filter(|(upper, _)| upper.is_finite() && *upper > 0.0)
        .collect();
    if buckets.is_empty() {
        return None;
    }
    let low = buckets[0].0 / 2.0;
    let high = buckets.iter().map(|b| b.0).fold(low, f64::max) * 1.2;
    let top = buckets.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64 * 1.15;
    svg((960, 260), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .caption("one-way latency histogram (frames per bucket)", (FONT, 14))
            .build_cartesian_2d((low..high).log_scale(), 0f64..top)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("ms")
            .draw()?;
        let mut from = low;
        chart.draw_series(buckets.iter().map(|(upper, count)| {
            let bar = Rectangle::new([(from, 0.0), (*upper, *count as f64)], BAR.filled());
            from = *upper;
            bar
        }))?;
        chart.draw_series(
            percentiles.iter().map(|(_, at)| {
                PathElement::new(vec![(*at, 0.0), (*at, top)], FAIL.stroke_width(1))
            }),
        )?;
        chart.draw_series(percentiles.iter().map(|(name, at)| {
            Text::new(
                svg_text(name, 8),
                (*at, top * 0.97),
                (FONT, 11).into_font().color(&FAIL),
            )
        }))?;
        Ok(())
    })
}

/// One trial of a throughput search (RFC 2544): the rate offered for a
/// frame size and the loss found.
#[derive(Clone, Debug, PartialEq)]
pub struct ThroughputTrial {
    pub frame_size: u32,
    /// Frames per second offered.
    pub offered_fps: f64,
    /// Frames lost, in percent of those sent.
    pub loss_percent: f64,
    /// Whether the search counted it (a warm-up or a retried trial is
    /// drawn, hollow, but did not decide anything).
    pub counted: bool,
}

/// What a throughput search found for a frame size.
#[derive(Clone, Debug, PartialEq)]
pub struct ThroughputResult {
    pub kind: ThroughputKind,
    pub frame_size: u32,
    pub frames_per_second: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThroughputKind {
    /// No-drop rate: the highest rate with no loss.
    Ndr,
    /// Partial-drop rate: the highest rate with loss within the tolerance.
    Pdr,
}

/// A throughput search: left, its trials in order (rate tried; green
/// without loss, red with, hollow when not counted), one line per frame
/// size; right, its NDR and PDR per frame size as bars.
pub fn throughput_svg(trials: &[ThroughputTrial], results: &[ThroughputResult]) -> Option<String> {
    if trials.is_empty() && results.is_empty() {
        return None;
    }
    let mut sizes: Vec<u32> = trials
        .iter()
        .map(|t| t.frame_size)
        .chain(results.iter().map(|r| r.frame_size))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let top = trials
        .iter()
        .map(|t| t.offered_fps)
        .chain(results.iter().map(|r| r.frames_per_second))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    svg((960, 300), |root| {
        let (left, right) = root.split_horizontally(600);
        let count = trials.len().max(1);
        let mut chart = ChartBuilder::on(&left)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(80)
            .caption("trials: rate tried (frames/s)", (FONT, 14))
            .build_cartesian_2d(0f64..count as f64 + 1.0, 0f64..top)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("trial")
            .draw()?;
        for size in &sizes {
            let of_size: Vec<(usize, &ThroughputTrial)> = trials
                .iter()
                .enumerate()
                .filter(|(_, t)| t.frame_size == *size)
                .collect();
            chart
                .draw_series(LineSeries::new(
                    of_size
                        .iter()
                        .map(|(n, t)| (*n as f64 + 1.0, t.offered_fps)),
                    SKIP.stroke_width(1),
                ))?
                .label(format!("{size} B"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], SKIP));
            chart.draw_series(of_size.iter().map(|(n, t)| {
                let color = if t.loss_percent > 0.0 { FAIL } else { PASS };
                let style = if t.counted {
                    color.filled()
                } else {
                    color.stroke_width(2)
                };
                Circle::new((*n as f64 + 1.0, t.offered_fps), 4, style)
            }))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;

        // Two bars per frame size: NDR, then PDR.
        let slots = sizes.len().max(1) * 2;
        let mut bars = ChartBuilder::on(&right)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(80)
            .caption("NDR (green), PDR (blue) per frame size", (FONT, 14))
            .build_cartesian_2d((0..slots).into_segmented(), 0f64..top)?;
        let labels: Vec<String> = sizes
            .iter()
            .flat_map(|s| [format!("{s} B NDR"), format!("{s} B PDR")])
            .collect();
        bars.configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(n) => labels.get(*n).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        bars.draw_series(results.iter().filter_map(|r| {
            let group = sizes.iter().position(|s| *s == r.frame_size)?;
            let (slot, color) = match r.kind {
                ThroughputKind::Ndr => (group * 2, PASS),
                ThroughputKind::Pdr => (group * 2 + 1, BAR),
            };
            Some(Rectangle::new(
                [
                    (SegmentValue::Exact(slot), 0.0),
                    (SegmentValue::Exact(slot + 1), r.frames_per_second),
                ],
                color.filled(),
            ))
        }))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(n: usize, received: u64, lost: i64) -> SinkInterval {
        SinkInterval {
            start_ms: n as f64 * 100.0,
            duration_ms: 100.0,
            received,
            rate: received as f64 * 10.0,
            lost,
            lost_total: 0,
            latency_p50_ms: Some(0.02),
            latency_p99_ms: Some(0.09),
            latency_max_ms: Some(0.4),
        }
    }

    /// Times far off the run's axis (a report's steps are not checked
    /// against its duration) still draw, each held to the axis: plotters
    /// overflowed on them (found by the fuzz target `report`).
    #[test]
    fn a_timeline_with_times_off_its_axis_still_draws() {
        let span = |start: f64, end: f64| Span {
            label: "s".into(),
            start,
            end,
            kind: SpanKind::Passed,
        };
        let spans = [
            span(4.0e9, 4.1e9),
            span(-1.0e12, 1.0),
            span(f64::NAN, f64::INFINITY),
            span(0.2, 0.4),
        ];
        let markers = [Marker {
            label: "down".into(),
            at: 1.0e15,
            failed: false,
        }];
        for total in [1.0, f64::INFINITY, f64::NAN] {
            let svg = timeline_svg(&spans, &markers, total).expect("a chart");
            assert!(svg.starts_with("<svg"), "{svg}");
            // The background, and a bar for every span.
            assert_eq!(svg.matches("<rect").count(), 1 + spans.len(), "{svg}");
        }
    }

    #[test]
    fn throughput_draws_every_trial_and_result_on_synthetic_data() {
        let trials: Vec<ThroughputTrial> = [
            (64, 1e6, 3.0),
            (64, 5e5, 0.0),
            (64, 7.5e5, 0.0),
            (1518, 8e4, 0.0),
        ]
        .into_iter()
        .enumerate()
        .map(|(n, (size, rate, loss))| ThroughputTrial {
            frame_size: size,
            offered_fps: rate,
            loss_percent: loss,
            counted: n > 0,
        })
        .collect();
        let results = [
            ThroughputResult {
                kind: ThroughputKind::Ndr,
                frame_size: 64,
                frames_per_second: 7.5e5,
            },
            ThroughputResult {
                kind: ThroughputKind::Pdr,
                frame_size: 64,
                frames_per_second: 8e5,
            },
            ThroughputResult {
                kind: ThroughputKind::Ndr,
                frame_size: 1518,
                frames_per_second: 8e4,
            },
        ];
        let svg = throughput_svg(&trials, &results).expect("a chart");
        assert!(svg.starts_with("<svg"), "{svg}");
        // One dot per trial, one bar per result (besides the background).
        assert_eq!(svg.matches("<circle").count(), trials.len(), "{svg}");
        assert!(svg.contains("64 B") && svg.contains("1518 B"), "{svg}");
        let red = format!("#{:02X}{:02X}{:02X}", FAIL.0, FAIL.1, FAIL.2);
        assert!(
            svg.to_uppercase().contains(&red),
            "the lossy trial is red: {svg}"
        );
        assert!(throughput_svg(&[], &[]).is_none());
    }

    #[test]
    fn the_rate_plot_has_the_cut_and_a_long_run_is_thinned() {
        let intervals: Vec<SinkInterval> = (0..5000)
            .map(|n| interval(n, 100, if n == 40 { 50 } else { 0 }))
            .collect();
        let traffic = SinkTraffic {
            step: "sink".into(),
            intervals,
            intervals_left_out: 0,
            summary: None,
        };
        let cut = Marker {
            label: "dut:east <down>".into(),
            at: 4.0,
            failed: false,
        };
        let svg = sink_rate_loss_svg(&traffic, 1.0, &[cut]).expect("a chart");
        assert!(svg.contains("dut:east &lt;down&gt;"), "{svg}");
        assert!(!svg.contains("<down>"));
        assert!(svg.len() < 200_000, "{} bytes", svg.len());
    }

    #[test]
    fn the_histogram_has_a_bar_per_bucket_and_its_percentiles() {
        let buckets = [
            (0.016, 10),
            (0.032, 900),
            (0.064, 80),
            (0.128, 9),
            (0.256, 1),
        ];
        let svg = latency_histogram_svg(&buckets, &[("p50", 0.02), ("p99", 0.1)]).expect("a chart");
        // The background, then one rectangle per bucket.
        assert_eq!(svg.matches("<rect").count(), 1 + buckets.len(), "{svg}");
        assert!(svg.contains("p50") && svg.contains("p99"), "{svg}");
        assert!(latency_histogram_svg(&[], &[]).is_none());
    }

    #[test]
    fn thinning_keeps_the_totals() {
        let intervals: Vec<SinkInterval> = (0..10).map(|n| interval(n, 10, 1)).collect();
        let thinned = thin(&intervals, 3);
        assert_eq!(thinned.len(), 3);
        assert_eq!(thinned.iter().map(|i| i.received).sum::<u64>(), 100);
        assert_eq!(thinned.iter().map(|i| i.lost).sum::<i64>(), 10);
    }

    #[test]
    fn text_is_cleaned_and_cut() {
        assert_eq!(svg_text("a<b>&\"\u{1b}", 10), "a<b>&\"");
        assert_eq!(svg_text("abcdef", 3), "abc…");
    }
}
