package org.osfarm.server;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.function.Supplier;

/** The service's Prometheus metrics (scraped at {@code /metrics}). */
final class ServerMetrics {
  final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  final Counter buildsOk;
  final Counter buildsFailed;
  final Counter requestsDeduplicated;
  final Counter layersBuilt;
  final Counter layersReused;
  final Counter outputsFromCache;
  final Counter bytesServed;
  final Counter downloads;
  final Counter exportsWritten;
  final Counter exportsEvicted;
  final Timer buildTime;

  ServerMetrics() {
    buildsOk =
        Counter.builder("osfarm.builds")
            .tag("result", "done")
            .description("finished builds")
            .register(registry);
    buildsFailed =
        Counter.builder("osfarm.builds")
            .tag("result", "failed")
            .description("failed builds")
            .register(registry);
    requestsDeduplicated =
        Counter.builder("osfarm.requests.deduplicated")
            .description("requests answered by an identical job already queued or running")
            .register(registry);
    layersBuilt = Counter.builder("osfarm.layers.built").register(registry);
    layersReused =
        Counter.builder("osfarm.layers.reused").description("layer cache hits").register(registry);
    outputsFromCache =
        Counter.builder("osfarm.outputs.cached")
            .description("output cache hits")
            .register(registry);
    bytesServed =
        Counter.builder("osfarm.bytes.served")
            .baseUnit("bytes")
            .description("download bytes sent")
            .register(registry);
    downloads = Counter.builder("osfarm.downloads").register(registry);
    exportsWritten =
        Counter.builder("osfarm.exports.written")
            .description("snapshots written to a download format (once per snapshot and format)")
            .register(registry);
    exportsEvicted =
        Counter.builder("osfarm.exports.evicted")
            .description("snapshot exports removed to keep DATA/exports under its limit")
            .register(registry);
    buildTime = Timer.builder("osfarm.build.duration").register(registry);
    new JvmMemoryMetrics().bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);
  }

  void gauge(String name, String description, Supplier<Number> f) {
    Gauge.builder(name, f).description(description).register(registry);
  }

  /** Layer cache hit rate over this process's builds (0 when nothing was built). */
  double cacheHitRate() {
    double hits = layersReused.count();
    double all = hits + layersBuilt.count();
    return all == 0 ? 0 : hits / all;
  }
}
