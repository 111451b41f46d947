package org.osfarm.mount.rebase;

import java.nio.file.Path;
import java.util.List;
import org.osfarm.core.Digest;

/**
 * What a rebase did (or, for a dry run, would do).
 *
 * @param scratch the scratch directory
 * @param base the snapshot the local changes were made over
 * @param onto the snapshot they were moved onto
 * @param dryRun true if nothing was changed
 * @param upstreamChanges paths upstream changed between {@code base} and {@code onto}
 * @param localChanges local changes found in the upper directory (files, whiteouts, opaque
 *     directories; not the directories that only hold them)
 * @param kept local changes kept as they were
 * @param dropped local changes dropped because upstream wins (saved in {@code backup})
 * @param merged account files rewritten by the record merge
 * @param conflicts every decision that dropped or overrode something, in path order
 * @param remaps local users and groups that got a new id
 * @param backup the directory holding what was replaced or removed and the journal (null for a dry
 *     run or when nothing had to change)
 */
public record RebaseReport(
    Path scratch,
    Digest base,
    Digest onto,
    boolean dryRun,
    int upstreamChanges,
    int localChanges,
    int kept,
    int dropped,
    List<String> merged,
    List<Conflict> conflicts,
    List<IdRemap> remaps,
    Path backup) {

  public RebaseReport {
    merged = List.copyOf(merged);
    conflicts = List.copyOf(conflicts);
    remaps = List.copyOf(remaps);
  }

  /** The report as one JSON object (for scripts). */
  public String toJson() {
    StringBuilder sb = new StringBuilder("{");
    field(sb, "scratch", scratch.toString()).append(',');
    field(sb, "base", base.hex()).append(',');
    field(sb, "onto", onto.hex()).append(',');
    sb.append("\"dryRun\":").append(dryRun).append(',');
    sb.append("\"upstreamChanges\":").append(upstreamChanges).append(',');
    sb.append("\"localChanges\":").append(localChanges).append(',');
    sb.append("\"kept\":").append(kept).append(',');
    sb.append("\"dropped\":").append(dropped).append(',');
    sb.append("\"merged\":[");
    for (int i = 0; i < merged.size(); i++) {
      sb.append(i > 0 ? "," : "");
      string(sb, merged.get(i));
    }
    sb.append("],\"conflicts\":[");
    for (int i = 0; i < conflicts.size(); i++) {
      Conflict c = conflicts.get(i);
      sb.append(i > 0 ? ",{" : "{");
      field(sb, "path", c.path()).append(',');
      field(sb, "rule", c.rule()).append(',');
      field(sb, "winner", c.winner()).append(',');
      field(sb, "detail", c.detail()).append('}');
    }
    sb.append("],\"remaps\":[");
    for (int i = 0; i < remaps.size(); i++) {
      IdRemap r = remaps.get(i);
      sb.append(i > 0 ? ",{" : "{");
      field(sb, "kind", r.kind()).append(',');
      field(sb, "name", r.name()).append(',');
      sb.append("\"from\":").append(r.from()).append(",\"to\":").append(r.to());
      sb.append(",\"filesReowned\":").append(r.filesReowned()).append('}');
    }
    sb.append("],\"backup\":");
    if (backup == null) {
      sb.append("null");
    } else {
      string(sb, backup.toString());
    }
    return sb.append('}').toString();
  }

  private static StringBuilder field(StringBuilder sb, String name, String value) {
    string(sb, name);
    sb.append(':');
    string(sb, value);
    return sb;
  }

  private static void string(StringBuilder sb, String s) {
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
    sb.append('"');
  }
}
