
x*	2three2five