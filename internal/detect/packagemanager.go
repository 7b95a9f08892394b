package detect

import (
	"fmt"
	"path"
	"strings"
)

// packageManager is the detected package manager of a project and how it installs.
type packageManager struct {
	name    string
	install string
	notes   []string
}

// exec returns the command line that runs a locally installed binary through the package manager.
func (pm packageManager) exec(command string) string {
	switch pm.name {
	case "yarn":
		return "yarn " + command
	case "pnpm":
		return "pnpm exec " + command
	default:
		return "npx " + command
	}
}

// lockfiles maps each package manager to its lockfiles, in the order that breaks ties.
var lockfiles = []struct {
	pm    string
	files []string
}{
	{"pnpm", []string{"pnpm-lock.yaml"}},
	{"yarn", []string{"yarn.lock"}},
	{"npm", []string{"package-lock.json", "npm-shrinkwrap.json"}},
}

// packageManager detects the package manager of the project in dir from the nearest lockfiles
// and the packageManager field.
func (r *repo) packageManager(dir string, pkg *packageJSON) (packageManager, error) {
	lockDir := dir
	var found []string // lockfile names in lockDir
	locked := map[string]bool{}
	for {
		for _, l := range lockfiles {
			for _, f := range l.files {
				ok, err := r.has(lockDir, f)
				if err != nil {
					return packageManager{}, fmt.Errorf("list %s: %w", lockDir, err)
				}
				if ok {
					found = append(found, f)
					locked[l.pm] = true
				}
			}
		}
		if len(found) > 0 || lockDir == "." {
			break
		}
		lockDir = path.Dir(lockDir)
	}

	field := pkg.PackageManager
	if field == "" && lockDir != dir {
		ok, err := r.has(lockDir, "package.json")
		if err != nil {
			return packageManager{}, err
		}
		if ok {
			root, err := r.readPackageJSON(lockDir)
			if err != nil {
				return packageManager{}, err
			}
			field = root.PackageManager
		}
	}
	fieldName, fieldVersion, _ := strings.Cut(field, "@")

	var pm packageManager
	switch fieldName {
	case "npm", "yarn", "pnpm":
		pm.name = fieldName
		if len(found) > 0 && !locked[pm.name] {
			pm.notes = append(pm.notes, fmt.Sprintf("packageManager is %s but only %s was found: dependencies are installed without a lockfile", field, strings.Join(found, ", ")))
		}
	default:
		if fieldName != "" {
			pm.notes = append(pm.notes, fmt.Sprintf("packageManager %s is not supported: the package manager is chosen from the lockfile", field))
		}
		pm.name = "npm"
		for _, l := range lockfiles {
			if locked[l.pm] {
				pm.name = l.pm
				break
			}
		}
		if len(locked) > 1 {
			pm.notes = append(pm.notes, fmt.Sprintf("several lockfiles (%s): %s is used; delete the others or set packageManager in package.json", strings.Join(found, ", "), pm.name))
		}
	}

	frozen := locked[pm.name]
	switch pm.name {
	case "npm":
		pm.install = "npm install"
		if frozen {
			pm.install = "npm ci"
		}
	case "yarn":
		pm.install = "yarn install"
		if frozen {
			berry, err := r.has(lockDir, ".yarnrc.yml")
			if err != nil {
				return packageManager{}, err
			}
			if major, ok := parseMajor(fieldVersion); ok && fieldName == "yarn" {
				berry = major >= 2
			}
			if berry {
				pm.install += " --immutable"
			} else {
				pm.install += " --frozen-lockfile"
			}
		}
	case "pnpm":
		pm.install = "pnpm install"
		if frozen {
			pm.install += " --frozen-lockfile"
		}
	}
	return pm, nil
}
