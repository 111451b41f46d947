package org.osfarm.catalog;

import org.osfarm.core.Digest;
import org.osfarm.core.PublishHook;
import org.osfarm.core.Repository;

/**
 * Indexes every snapshot as it is published (registered with {@link java.util.ServiceLoader}) when
 * the repository's {@code osfarm.conf} says {@code catalog-on-publish yes}.
 *
 * <p>By default publish does not pay for the index: every query runs {@link Catalog#sync} first,
 * which indexes each snapshot its refs name and the catalog lacks, one transaction per snapshot. So
 * no query ever misses a published snapshot either way; the setting only decides whether the
 * indexing cost lands on the publish or on the first query after it (a service that wants instant
 * queries sets it, or syncs in the background).
 */
public final class CatalogPublishHook implements PublishHook {
  @Override
  public void published(Repository repo, String ref, Digest snapshot) {
    if (!repo.setting("catalog-on-publish").map(v -> v.equals("yes")).orElse(false)) {
      return;
    }
    try (Catalog c = Catalog.open(repo)) {
      c.add(snapshot, ref);
    }
  }
}
