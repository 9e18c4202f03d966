"""What steers a search: the sampler (`tpe`), the searcher that asks it (`searcher`, its study kept in a
`journal`), the Pareto-aware early stopping (`pareto_asha`), the Pareto arithmetic they share (`pareto`), and the
choice among them that the options name (`strategies`)."""
