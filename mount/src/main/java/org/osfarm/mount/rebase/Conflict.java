package org.osfarm.mount.rebase;

/**
 * One decision of a rebase that dropped or overrode something.
 *
 * @param path the path in the image, from the root (e.g. {@code /etc/motd})
 * @param rule the rule that decided: {@code local-wins-etc-var}, {@code upstream-wins}, {@code
 *     account-merge}, {@code id-remap}
 * @param winner {@code local}, {@code upstream} or {@code merged}
 * @param detail what each side did and what happened to the loser (e.g. where it was saved)
 */
public record Conflict(String path, String rule, String winner, String detail) {}
