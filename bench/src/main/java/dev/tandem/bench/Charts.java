package dev.tandem.bench;

import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CombinedDomainXYPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.renderer.xy.XYStepRenderer;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.text.DecimalFormat;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.ToDoubleFunction;

/** PNG charts of one run, drawn headless with JFreeChart: latency CDFs, SLO ratio CDFs, throughput and in-flight over time. */
public final class Charts {
    static {
        System.setProperty("java.awt.headless", "true"); // no display on benchmark machines
    }

    private static final int W = 900, H = 520, MAX_POINTS = 2000;
    private static final BasicStroke DASHED = new BasicStroke(1.2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {6, 4}, 0);

    private Charts() {}

    /** Writes every chart into {@code dir}; returns the file names written. */
    public static List<String> write(Path dir, List<RequestRecord> records, TimeSeries series, UnloadedBaseline base) throws IOException {
        List<RequestRecord> ok = records.stream().filter(RequestRecord::ok).toList();
        List<String> files = new ArrayList<>();
        files.add(cdf(dir, "cdf-ttft.png", "Time to first token", values(ok, RequestRecord::ttftS), base.ttftS()));
        files.add(cdf(dir, "cdf-tbt.png", "Time between tokens (gaps between chunks)",
                ok.stream().flatMapToDouble(r -> Arrays.stream(r.chunkGapsS())).toArray(), base.tbtS()));
        files.add(cdf(dir, "cdf-e2e.png", "End-to-end latency", values(ok, RequestRecord::e2eS), base.e2eS()));
        files.add(sloRatios(dir, ok, base));
        files.add(throughput(dir, series));
        files.add(inFlight(dir, series));
        return files;
    }

    private static double[] values(List<RequestRecord> ok, ToDoubleFunction<RequestRecord> f) {
        return ok.stream().mapToDouble(f).toArray();
    }

    private static String cdf(Path dir, String file, String title, double[] seconds, double unloadedS) throws IOException {
        XYSeriesCollection data = new XYSeriesCollection(cdfSeries("loaded", seconds, 1000));
        JFreeChart chart = ChartFactory.createXYLineChart(title + " (CDF)", "milliseconds", "fraction of samples", data,
                PlotOrientation.VERTICAL, false, false, false);
        XYPlot plot = chart.getXYPlot();
        ((NumberAxis) plot.getRangeAxis()).setRange(0, 1.0);
        if (!Double.isNaN(unloadedS)) plot.addDomainMarker(marker(unloadedS * 1000, "unloaded", Color.GRAY));
        style(plot);
        return save(dir, file, chart);
    }

    /** Loaded / unloaded for all three metrics on one log axis, with the P90 SLO limits marked. */
    private static String sloRatios(Path dir, List<RequestRecord> ok, UnloadedBaseline base) throws IOException {
        XYSeriesCollection data = new XYSeriesCollection();
        // Clamped away from 0: a log axis cannot show two chunks that arrived in the same read.
        data.addSeries(cdfSeries("TTFT", floor(values(ok, r -> r.ttftS() / base.ttftFor(r.promptTokens()))), 1));
        data.addSeries(cdfSeries("TBT", floor(ok.stream().flatMapToDouble(r -> Arrays.stream(r.chunkGapsS())).map(g -> g / base.tbtS()).toArray()), 1));
        data.addSeries(cdfSeries("E2E", floor(values(ok, r -> r.e2eS() / base.expectedE2eS(r.promptTokens(), r.outputTokens()))), 1));
        JFreeChart chart = ChartFactory.createXYLineChart("Slowdown vs unloaded (CDF)", "loaded / unloaded", "fraction of samples",
                data, PlotOrientation.VERTICAL, true, false, false);
        XYPlot plot = chart.getXYPlot();
        LogAxis x = new LogAxis("loaded / unloaded (log scale)");
        x.setSmallestValue(1e-2);
        x.setNumberFormatOverride(new DecimalFormat("0.##"));
        double max = 1;
        for (int i = 0; i < data.getSeriesCount(); i++) max = Math.max(max, data.getSeries(i).getMaxX());
        double min = 1;
        for (int i = 0; i < data.getSeriesCount(); i++) if (data.getSeries(i).getItemCount() > 0) min = Math.min(min, data.getSeries(i).getMinX());
        x.setRange(min * 0.9, Math.max(max, 3) * 1.3); // keep both limit lines in view
        plot.setDomainAxis(x);
        ((NumberAxis) plot.getRangeAxis()).setRange(0, 1.0);
        plot.addDomainMarker(marker(3, "TTFT P90 limit 3x", Color.RED.darker()));
        plot.addDomainMarker(marker(1.5, "TBT/E2E P90 limit 1.5x", Color.ORANGE.darker()));
        style(plot);
        return save(dir, "slo-ratios.png", chart);
    }

    private static double[] floor(double[] ratios) {
        return Arrays.stream(ratios).map(x -> Math.max(x, 1e-2)).toArray();
    }

    private static String throughput(Path dir, TimeSeries s) throws IOException {
        CombinedDomainXYPlot combined = new CombinedDomainXYPlot(new NumberAxis("seconds since start"));
        combined.add(seriesPlot("output tokens/s", s.outputTokensPerS()), 2);
        combined.add(seriesPlot("input tokens/s", s.inputTokensPerS()), 2);
        combined.add(seriesPlot("completed requests/s", Arrays.stream(s.completedPerS()).asDoubleStream().toArray()), 1);
        JFreeChart chart = new JFreeChart("Throughput per second", JFreeChart.DEFAULT_TITLE_FONT, combined, false);
        chart.setBackgroundPaint(Color.WHITE);
        return save(dir, "throughput.png", chart);
    }

    private static XYPlot seriesPlot(String label, double[] perSecond) {
        XYSeries series = new XYSeries(label, false, true);
        for (int i = 0; i < perSecond.length; i++) series.add(i + 0.5, perSecond[i]);
        XYPlot plot = new XYPlot(new XYSeriesCollection(series), null, new NumberAxis(label), new XYLineAndShapeRenderer(true, false));
        style(plot);
        return plot;
    }

    private static String inFlight(Path dir, TimeSeries s) throws IOException {
        XYSeries series = new XYSeries("in flight", false, true);
        double[] t = s.inFlightTimesS();
        int[] level = s.inFlightLevels();
        int step = Math.max(1, t.length / (MAX_POINTS * 4));
        for (int i = 0; i < t.length; i += step) series.add(t[i], level[i]);
        series.add(t[t.length - 1], level[level.length - 1]);
        JFreeChart chart = ChartFactory.createXYLineChart("Requests in flight (client-side queue depth)", "seconds since start",
                "requests in flight", new XYSeriesCollection(series), PlotOrientation.VERTICAL, false, false, false);
        chart.getXYPlot().setRenderer(new XYStepRenderer());
        style(chart.getXYPlot());
        return save(dir, "in-flight.png", chart);
    }

    /** Empirical CDF, thinned to at most MAX_POINTS points (always keeping the last). */
    static XYSeries cdfSeries(String name, double[] values, double scale) {
        double[] v = Arrays.stream(values).filter(x -> !Double.isNaN(x) && !Double.isInfinite(x)).sorted().toArray();
        XYSeries s = new XYSeries(name, false, true);
        int step = Math.max(1, v.length / MAX_POINTS);
        for (int i = 0; i < v.length; i += step) s.add(v[i] * scale, (i + 1) / (double) v.length);
        if (v.length > 0) s.add(v[v.length - 1] * scale, 1.0);
        return s;
    }

    private static ValueMarker marker(double x, String label, Color color) {
        ValueMarker m = new ValueMarker(x, color, DASHED);
        m.setLabel(label);
        m.setLabelAnchor(RectangleAnchor.TOP_LEFT); // label left of the line, so a line at the edge keeps its label
        m.setLabelTextAnchor(TextAnchor.TOP_RIGHT);
        return m;
    }

    private static void style(XYPlot plot) {
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
    }

    private static String save(Path dir, String file, JFreeChart chart) throws IOException {
        ChartUtils.saveChartAsPNG(dir.resolve(file).toFile(), chart, W, H);
        return file;
    }
}
