//! The dependency graph of a bundle's components (or a stack's): cycles, ancestors,
//! topological order. Below both the catalog's validator and the bundle compiler.

/// Components as nodes `0..n`; `deps[i]` lists the nodes `i` depends on.
#[derive(Debug, Clone)]
pub struct DependencyGraph {
    deps: Vec<Vec<usize>>,
}

impl DependencyGraph {
    /// Builds the graph. Dependencies out of range are ignored: the caller reports unknown
    /// names before it builds the graph.
    pub fn new(deps: Vec<Vec<usize>>) -> Self {
        let n = deps.len();
        let deps = deps
            .into_iter()
            .map(|d| d.into_iter().filter(|&j| j < n).collect())
            .collect();
        DependencyGraph { deps }
    }

    pub fn len(&self) -> usize {
        self.deps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    pub fn dependencies(&self, node: usize) -> &[usize] {
        &self.deps[node]
    }

    /// A cycle, if there is one, as the nodes along it with the first repeated at the end
    /// (`[a, b, c, a]`: a depends on b, b on c, c on a).
    pub fn find_cycle(&self) -> Option<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let n = self.deps.len();
        let mut mark = vec![Mark::New; n];
        for start in 0..n {
            if mark[start] != Mark::New {
                continue;
            }
            // Iterative depth-first search: (node, index of the next dependency to visit).
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            mark[start] = Mark::OnPath;
            while let Some((node, next)) = path.last_mut() {
                let node = *node;
                if let Some(&dep) = self.deps[node].get(*next) {
                    *next += 1;
                    match mark[dep] {
                        Mark::New => {
                            mark[dep] = Mark::OnPath;
                            path.push((dep, 0));
                        }
                        Mark::OnPath => {
                            let from = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                            let mut cycle: Vec<usize> =
                                path[from..].iter().map(|(n, _)| *n).collect();
                            cycle.push(dep);
                            return Some(cycle);
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node] = Mark::Done;
                    path.pop();
                }
            }
        }
        None
    }

    /// Every node `node` depends on, directly or through others.
    pub fn ancestors(&self, node: usize) -> Vec<bool> {
        let mut seen = vec![false; self.deps.len()];
        let mut stack: Vec<usize> = self.deps[node].clone();
        while let Some(n) = stack.pop() {
            if !seen[n] {
                seen[n] = true;
                stack.extend(&self.deps[n]);
            }
        }
        seen
    }

    /// Nodes in an order where every node comes after its dependencies (Kahn's algorithm,
    /// ties broken by declaration order). `None` when there is a cycle.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let n = self.deps.len();
        let mut missing: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut dependents = vec![Vec::new(); n];
        for (i, deps) in self.deps.iter().enumerate() {
            for &d in deps {
                dependents[d].push(i);
            }
        }
        let mut ready: std::collections::BTreeSet<usize> =
            (0..n).filter(|&i| missing[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &j in &dependents[i] {
                missing[j] -= 1;
                if missing[j] == 0 {
                    ready.insert(j);
                }
            }
        }
        (order.len() == n).then_some(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_is_named_from_end_to_end() {
        // 0 -> 1 -> 2 -> 0, and 3 -> 0 off the cycle.
        let g = DependencyGraph::new(vec![vec![1], vec![2], vec![0], vec![0]]);
        assert_eq!(g.find_cycle(), Some(vec![0, 1, 2, 0]));
        assert_eq!(g.topological_order(), None);
    }

    #[test]
    fn a_self_dependency_is_a_cycle() {
        let g = DependencyGraph::new(vec![vec![0]]);
        assert_eq!(g.find_cycle(), Some(vec![0, 0]));
    }

    #[test]
    fn ancestors_are_transitive_and_order_respects_dependencies() {
        // 2 depends on 1, 1 on 0; 3 independent.
        let g = DependencyGraph::new(vec![vec![], vec![0], vec![1], vec![]]);
        assert_eq!(g.find_cycle(), None);
        assert_eq!(g.ancestors(2), vec![true, true, false, false]);
        assert_eq!(g.ancestors(3), vec![false; 4]);
        assert_eq!(g.topological_order(), Some(vec![0, 1, 2, 3]));
    }
}
