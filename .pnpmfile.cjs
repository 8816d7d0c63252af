// The manifest published with each package (`pnpm pack` / `pnpm publish`, which changesets runs):
// without the development scripts (build, test, bench... name files the tarball does not hold)
// and devDependencies (private workspace packages among them). Local package.json files are unchanged.
module.exports = {
  hooks: {
    beforePacking(pkg) {
      delete pkg.scripts;
      delete pkg.devDependencies;
      return pkg;
    },
  },
};
