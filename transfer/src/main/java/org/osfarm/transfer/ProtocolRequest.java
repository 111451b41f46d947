package org.osfarm.transfer;

import java.io.InputStream;
import java.util.Map;

/**
 * One HTTP request as the protocol handlers see it, independent of the web framework.
 *
 * @param method {@code GET}, {@code POST}, {@code HEAD}...
 * @param path the path below the handler's mount point, starting with {@code /}, percent-decoded
 * @param query decoded query parameters (the first value of each)
 * @param body the request body (empty for GET)
 */
public record ProtocolRequest(
    String method, String path, Map<String, String> query, InputStream body) {}
