/**
 * Installs the Debian package of each missing program with apt-get (`sudo -n` unless root),
 * one `apt-get update` and one install for all; throws an Error naming the command on failure.
 */
export declare function ensureDebianPackages(needs: readonly { program: string; pkg: string; present?: () => boolean }[], log?: (message: string) => void): void;
