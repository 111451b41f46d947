package org.osfarm.core;

import java.util.List;

/**
 * What fsck found.
 *
 * @param snapshots snapshots checked
 * @param objects objects checked
 * @param problems each damage found, naming the object and where it is referenced; empty if clean
 */
public record FsckReport(long snapshots, long objects, List<String> problems) {
  public boolean clean() {
    return problems.isEmpty();
  }
}
