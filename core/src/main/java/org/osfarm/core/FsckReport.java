package org.osfarm.core;

import java.util.List;

/**
 * What fsck found.
 *
 * @param snapshots snapshots checked
 * @param objects objects checked
 * @param problems each damage found, naming the object and where it is referenced; empty if clean
 * @param notes findings that are not damage, such as unsigned snapshots in a repository that
 *     requires signatures
 */
public record FsckReport(long snapshots, long objects, List<String> problems, List<String> notes) {
  public FsckReport {
    problems = List.copyOf(problems);
    notes = List.copyOf(notes);
  }

  public FsckReport(long snapshots, long objects, List<String> problems) {
    this(snapshots, objects, problems, List.of());
  }

  public boolean clean() {
    return problems.isEmpty();
  }
}
