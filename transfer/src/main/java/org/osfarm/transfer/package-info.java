/**
 * The object protocol between repositories and block-level Content-Based Transfer of image files.
 */
package org.osfarm.transfer;
