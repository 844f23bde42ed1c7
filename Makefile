# Shortcuts for the scripts under scripts/ (each works on its own too).
.PHONY: run test check-infra package sam-build ci

run:          ## local mode on the example catalog, with the sandbox
	scripts/run

test:         ## the whole test suite
	scripts/test

check-infra:  ## sam validate, the template expanded by samtranslator and linted by cfn-lint
	scripts/check-infra

package:      ## the four Lambdas as arm64 zips (cargo-lambda), with their sizes
	scripts/package

sam-build:    ## sam build of infra/ (dev) with the zips' size-optimised profile
	scripts/sam-build

ci:           ## what CI runs
	.ci/run
