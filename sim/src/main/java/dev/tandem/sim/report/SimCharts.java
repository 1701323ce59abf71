package dev.tandem.sim.report;

import dev.tandem.engine.Role;
import dev.tandem.sim.engine.PoolTimeline;
import dev.tandem.sim.engine.SimResult;
import dev.tandem.sim.engine.SimResult.Percentiles;
import dev.tandem.sim.engine.SimResult.Summary;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CombinedDomainXYPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.renderer.xy.XYStepRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Function;

/** PNG charts of simulations: pool sizes over time, latency against load, SLO attainment against rate. */
final class SimCharts {
    private static final int W = 900, H = 520, MAX_STEPS = 4000;

    private SimCharts() {}

    static String poolSizes(Path dir, PoolTimeline t, double endS) throws IOException {
        XYSeriesCollection data = new XYSeriesCollection();
        for (Role role : Role.values()) {
            XYSeries s = new XYSeries(role.name().toLowerCase() + " instances", true, true);
            int step = Math.max(1, t.size() / MAX_STEPS);
            for (int i = 0; i < t.size(); i += step) s.addOrUpdate(t.time(i), t.count(i, role.ordinal()));
            s.addOrUpdate(Math.max(endS, t.time(t.size() - 1)), t.count(t.size() - 1, role.ordinal()));
            data.addSeries(s);
        }
        JFreeChart chart = ChartFactory.createXYLineChart("Pool sizes over time", "simulated seconds", "instances", data,
                PlotOrientation.VERTICAL, true, false, false);
        chart.getXYPlot().setRenderer(new XYStepRenderer());
        style(chart.getXYPlot());
        return save(dir, "pool-sizes.png", chart);
    }

    static String latencyVsLoad(Path dir, double[] rates, List<Summary> runs) throws IOException {
        CombinedDomainXYPlot combined = new CombinedDomainXYPlot(new NumberAxis("arrival rate (requests/s)"));
        combined.add(percentilePlot("TTFT (s, log)", rates, runs, Summary::ttftS));
        combined.add(percentilePlot("TBT (s, log)", rates, runs, Summary::tbtS));
        JFreeChart chart = new JFreeChart("Latency against load", JFreeChart.DEFAULT_TITLE_FONT, combined, true);
        chart.setBackgroundPaint(Color.WHITE);
        return save(dir, "latency-vs-load.png", chart);
    }

    private static XYPlot percentilePlot(String label, double[] rates, List<Summary> runs, Function<Summary, Percentiles> metric) {
        XYSeriesCollection data = new XYSeriesCollection();
        for (int level : SimResult.LEVELS) {
            XYSeries s = new XYSeries(label.substring(0, 4).trim() + " P" + level, false, true);
            for (int i = 0; i < rates.length; i++) {
                double v = metric.apply(runs.get(i)).at(level);
                if (v > 0 && Double.isFinite(v)) s.add(rates[i], v);
            }
            data.addSeries(s);
        }
        LogAxis y = new LogAxis(label);
        y.setSmallestValue(1e-4);
        y.setNumberFormatOverride(new java.text.DecimalFormat("0.###"));
        XYPlot plot = new XYPlot(data, null, y, new XYLineAndShapeRenderer(true, true));
        style(plot);
        return plot;
    }

    static String sloVsRate(Path dir, double[] rates, List<Summary> runs) throws IOException {
        XYSeriesCollection data = new XYSeriesCollection();
        int n = runs.getFirst().slos().size();
        for (int k = 0; k < n; k++) {
            var first = runs.getFirst().slos().get(k);
            if (first.level() == 50) continue; // P90 and P99 are the binding ones
            XYSeries s = new XYSeries(first.metric() + " P" + first.level() + " <= " + first.limit() + "x", false, true);
            for (int i = 0; i < rates.length; i++) s.add(rates[i], runs.get(i).slos().get(k).attainment());
            data.addSeries(s);
        }
        JFreeChart chart = ChartFactory.createXYLineChart("SLO attainment against rate", "arrival rate (requests/s)",
                "share of requests within the limit", data, PlotOrientation.VERTICAL, true, false, false);
        chart.getXYPlot().setRenderer(new XYLineAndShapeRenderer(true, true));
        ((NumberAxis) chart.getXYPlot().getRangeAxis()).setRange(0, 1.02);
        style(chart.getXYPlot());
        return save(dir, "slo-vs-rate.png", chart);
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
