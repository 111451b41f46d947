package org.osfarm.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.osfarm.core.Repository;
import org.osfarm.mount.rebase.Conflict;
import org.osfarm.mount.rebase.IdRemap;
import org.osfarm.mount.rebase.Rebase;
import org.osfarm.mount.rebase.RebaseReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "rebase",
    description = {
      "Move the local changes of a writable mount onto a newer snapshot.",
      "",
      "Move the local changes of a writable mount (SCRATCH of 'osfarm mount --writable') onto "
          + "the snapshot REF names. Local changes win under /etc and /var, upstream's elsewhere; "
          + "/etc/passwd, group, shadow and gshadow are merged record by record, and local users or "
          + "groups whose id upstream now uses are given a free id and their files re-owned. Every "
          + "conflict is reported. Dropped files are kept in SCRATCH/rebase-backup-TIME/. The "
          + "snapshots come from --repo (default: the scratch directory's source, if it is a "
          + "directory); pull a remote one first with 'osfarm pull'. Refuses while SCRATCH is "
          + "mounted."
    })
final class RebaseCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "SCRATCH")
  Path scratch;

  @Option(names = "--onto", paramLabel = "REF", description = "Ref or snapshot id to move onto.")
  String onto;

  @Option(names = "--dry-run", description = "Report what would happen; change nothing.")
  boolean dryRun;

  @Option(names = "--json", description = "Print the report as one JSON object.")
  boolean json;

  @Option(
      names = "--rollback",
      description = "Undo an interrupted rebase from its journal (restores the upper directory).")
  boolean rollback;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    if (rollback) {
      List<Path> undone = Rebase.rollback(scratch);
      out.println(
          undone.isEmpty()
              ? "nothing to roll back in " + scratch
              : "rolled back " + undone.size() + " unfinished rebase(s): " + undone);
      return 0;
    }
    if (onto == null) {
      throw new ParameterException(spec.commandLine(), "Missing required option: '--onto=REF'");
    }
    try (Repository repo = openRepository()) {
      RebaseReport r = Rebase.rebase(repo, scratch, onto, dryRun);
      if (json) {
        out.println(r.toJson());
      } else {
        render(out, r);
      }
    }
    return 0;
  }

  private Repository openRepository() throws java.io.IOException {
    if (top.repo == null) {
      Optional<String> source = Rebase.source(scratch);
      if (source.isPresent() && !source.get().contains("://")) {
        Path dir = Path.of(source.get());
        if (Files.isDirectory(dir)) {
          return Repository.open(dir);
        }
      }
    }
    return top.openRepository();
  }

  private void render(PrintWriter out, RebaseReport r) {
    String would = r.dryRun() ? "would " : "";
    out.println(
        (r.dryRun() ? "dry run: would rebase " : "rebased ")
            + r.scratch()
            + " from "
            + r.base().shortHex(12)
            + " onto "
            + r.onto().shortHex(12)
            + " ("
            + onto
            + ")");
    out.println(
        "local changes: "
            + r.localChanges()
            + " ("
            + r.kept()
            + " kept, "
            + r.dropped()
            + " dropped); upstream changed "
            + r.upstreamChanges()
            + " paths");
    if (!r.merged().isEmpty()) {
      out.println(would + "merge record by record: " + String.join(", ", r.merged()));
    }
    if (r.conflicts().isEmpty()) {
      out.println("no conflicts");
    } else {
      out.println("conflicts (" + r.conflicts().size() + "):");
      for (Conflict c : r.conflicts()) {
        out.println(
            "  " + c.path() + "  [" + c.rule() + ": " + c.winner() + " wins] " + c.detail());
      }
    }
    if (!r.remaps().isEmpty()) {
      out.println("ids " + (r.dryRun() ? "to remap" : "remapped") + ":");
      for (IdRemap m : r.remaps()) {
        out.println(
            "  "
                + m.kind()
                + " "
                + m.name()
                + " "
                + m.from()
                + " -> "
                + m.to()
                + " ("
                + m.filesReowned()
                + " files "
                + (r.dryRun() ? "to re-own" : "re-owned")
                + ")");
      }
    }
    if (r.backup() != null) {
      out.println("backup of replaced and removed files, and the journal: " + r.backup());
    }
  }
}
