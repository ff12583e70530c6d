/** @module The product version, taken from package.json at build time so the binary carries it. */
import pkg from "../package.json";

export const version: string = pkg.version;
