package org.osfarm.catalog;

import org.osfarm.core.Digest;
import org.osfarm.core.PublishHook;
import org.osfarm.core.Repository;

/**
 * Indexes every snapshot as it is published (registered with {@link java.util.ServiceLoader}), so
 * the catalog answers for it as soon as its ref moved. Publishes from elsewhere (a transfer, a ref
 * moved by hand) are picked up by {@link Catalog#sync}, which every query command runs first.
 */
public final class CatalogPublishHook implements PublishHook {
  @Override
  public void published(Repository repo, String ref, Digest snapshot) {
    try (Catalog c = Catalog.open(repo)) {
      c.add(snapshot, ref);
    }
  }
}
